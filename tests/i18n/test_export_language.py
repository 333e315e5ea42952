"""CSV exports are headed in the reader's language, whatever language the thread has when
the server reads the stream (a streaming response is iterated after the view returned)."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.utils import translation

from accounts.models import Company
from core.models import CodexSession

pytestmark = pytest.mark.django_db

PT = {"HTTP_ACCEPT_LANGUAGE": "pt-BR,pt;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}

# The headers as the catalogs write them (accounts' and portal's pt_BR django.po).
COMPANY_PT = [
    "ID",
    "Nome",
    "Domínio",
    "Plano de assinatura",
    "Máximo de usuários",
    "Ativo",
    "Criado em",
    "Atualizado em",
]
COMPANY_EN = [
    "ID",
    "Name",
    "Domain",
    "Subscription plan",
    "Max users",
    "Is active",
    "Created at",
    "Updated at",
]


def _read(response, *, other_language: str, delimiter: str = ",") -> tuple[str, list[list[str]]]:
    """The CSV of a streamed response, read while ``other_language`` is the thread's."""
    assert response.status_code == 200 and response.streaming
    with translation.override(other_language):
        text = b"".join(response.streaming_content).decode("utf-8")
        # Reading the stream leaves the thread's language as it was.
        assert translation.get_language() == other_language
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))
    return text, rows


@pytest.fixture
def company() -> Company:
    return Company.objects.create(name="Acme Ltda", domain="acme.com.br")


def test_a_portuguese_reader_gets_portuguese_headers(admin_client, company):
    response = admin_client.get("/admin/accounts/company/export.csv", **PT)
    _text, rows = _read(response, other_language="en")
    assert rows[0] == COMPANY_PT
    assert len(rows) == 1 + Company.objects.count()
    assert [r[rows[0].index("Nome")] for r in rows[1:]] == ["Acme Ltda"]


def test_an_english_reader_gets_english_headers(admin_client, company):
    response = admin_client.get("/admin/accounts/company/export.csv", **EN)
    _text, rows = _read(response, other_language="pt-br")
    assert rows[0] == COMPANY_EN
    assert [r[rows[0].index("Name")] for r in rows[1:]] == ["Acme Ltda"]


def test_the_spreadsheet_dialect_is_offered_and_headed_in_portuguese(admin_client, company):
    page = admin_client.get("/admin/accounts/company/", **PT).content.decode()
    assert "CSV para planilhas (;)" in page and "dialect=spreadsheet" in page
    response = admin_client.get("/admin/accounts/company/export.csv?dialect=spreadsheet", **PT)
    text, rows = _read(response, other_language="en", delimiter=";")
    assert text.startswith("\ufeff")
    assert rows[0] == COMPANY_PT


def test_the_computed_columns_of_a_list_follow_the_language_too(admin_client):
    CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u1", model="m", status="failed")
    pt = _read(admin_client.get("/admin/core/codexsession/export.csv", **PT), other_language="en")
    en = _read(
        admin_client.get("/admin/core/codexsession/export.csv", **EN), other_language="pt-br"
    )
    assert pt[1][0][-3:] == ["Execuções", "Tokens", "Tempo total (ms)"]
    assert en[1][0][-3:] == ["Executions", "Tokens", "Total time (ms)"]
    # The same columns in the same order, only their names differ.
    assert len(pt[1][0]) == len(en[1][0]) and pt[1][1:] == en[1][1:]


def test_the_spreadsheet_dialect_writes_decimals_as_the_reader_does(admin_client):
    from decimal import Decimal

    from analytics.models import SystemMetric

    metric = SystemMetric.objects.create(metric_name="latência", metric_value=Decimal("1234.5"))
    stored = str(SystemMetric.objects.values_list("metric_value", flat=True).get(pk=metric.pk))
    assert "." in stored  # e.g. 1234.5000, as the column's scale keeps it
    url = "/admin/analytics/systemmetric/export.csv"

    def value(response, header: str, delimiter: str) -> str:
        _text, rows = _read(response, other_language="en", delimiter=delimiter)
        return rows[1][rows[0].index(header)]

    # In a comma-decimal language the spreadsheet file has comma decimals, without
    # thousands dots (a spreadsheet set to pt-BR reads "1234,500000" as a number)...
    pt_sheet = admin_client.get(f"{url}?dialect=spreadsheet", **PT)
    assert value(pt_sheet, "Valor da métrica", ";") == stored.replace(".", ",")
    # ...the standard CSV keeps the stored value, and so does English.
    assert value(admin_client.get(url, **PT), "Valor da métrica", ",") == stored
    en_sheet = admin_client.get(f"{url}?dialect=spreadsheet", **EN)
    assert value(en_sheet, "Metric value", ";") == stored
