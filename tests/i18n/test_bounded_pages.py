"""The pages of a database that is slow, locked or down speak the reader's language.

The failures are real (a second connection holding ``ACCESS EXCLUSIVE``, a port nobody
listens on); nothing is mocked. English stays the default (tests/admin/test_bounds.py,
tests/deploy/test_outage.py); these read the same pages in pt-BR.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from accounts.models import User
from tests.admin.test_bounds import EXECUTIONS, table_locked
from tests.deploy.test_outage import _closed_port

PT = {"HTTP_ACCEPT_LANGUAGE": "pt-BR,pt;q=0.9"}


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
def test_a_locked_list_says_why_and_what_to_try_in_portuguese(admin_client):
    with table_locked("core.execution_history") as pid:
        response = admin_client.get(f"{EXECUTIONS}?q=migração&tokens=3", **PT)

    assert response.status_code == 503
    page = _text(response)
    assert (
        "A lista não foi exibida: esperou mais de 1 s por um bloqueio "
        f"(o pid {pid} detém AccessExclusiveLock em core.execution_history)."
    ) in page
    assert "A página Bloqueios, em Diagnóstico, mostra quem o detém." in page
    assert "<title>Histórico de execuções: lista não exibida |" in page
    for step in ["a mesma lista, só das últimas 24 horas", "os mesmos filtros, sem a busca"]:
        assert step in page
    assert 'value="Pesquisar de novo"' in page and "Tentar a mesma lista de novo" in page
    assert 'name="q" value="migração"' in page
    assert "waited" not in page and "Next steps" not in page


@pytest.mark.django_db
def test_a_locked_dashboard_panel_is_unavailable_in_portuguese(admin_client):
    with table_locked("core.execution_hours") as pid:
        response = admin_client.get("/admin/", **PT)

    assert response.status_code == 200
    assert (
        "indisponível: esperou mais de 300 ms por um bloqueio "
        f"(o pid {pid} detém AccessExclusiveLock em core.execution_hours)"
    ) in _text(response)


@pytest.fixture
def unreachable_database():
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = str(_closed_port())
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:No directory at")
def test_the_outage_page_follows_the_browser_language_without_the_database(request):
    user = User.objects.create_superuser(email="root@example.com", password="a-long-password-1")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    request.getfixturevalue("unreachable_database")

    portuguese = client.get("/admin/", HTTP_ACCEPT_LANGUAGE=PT["HTTP_ACCEPT_LANGUAGE"])
    english = client.get("/admin/")

    assert portuguese.status_code == english.status_code == 503
    page = _text(portuguese)
    assert '<html lang="pt-br">' in page
    assert "<h1>Banco de dados indisponível</h1>" in page
    assert "Nada foi alterado. Tente de novo em alguns segundos" in page
    english_page = _text(english)
    assert '<html lang="en">' in english_page
    assert "<h1>Database unavailable</h1>" in english_page
