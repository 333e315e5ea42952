"""The audit list describes the portal's summary entries in the reader's language; the
stored text (part of the hash chain) stays as written."""

from __future__ import annotations

import re

import pytest

from accounts.models import Company
from audit import services
from audit.models import ActivityLog

pytestmark = pytest.mark.django_db

PT = {"HTTP_ACCEPT_LANGUAGE": "pt-BR,pt;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
LIST = "/admin/audit/activitylog/"


def _text(response) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_purge_entry_reads_in_portuguese_and_its_stored_text_is_unchanged(admin_client):
    entry = services.record_cache_purge(deleted=1234)
    assert entry is not None
    stored = ActivityLog.objects.values_list("object_repr", flat=True).get(pk=entry.pk)

    portuguese = _text(admin_client.get(f"{LIST}?action=purge", **PT))
    english = _text(admin_client.get(f"{LIST}?action=purge", **EN))

    assert "1.234 entradas expiradas do cache de ferramentas" in portuguese
    assert "Limpou o cache expirado" in portuguese  # the action's label
    assert stored not in portuguese
    # In English the list shows what was written (with the figure grouped).
    assert stored == "1234 expired tool cache entries"
    assert "1,234 expired tool cache entries" in english
    assert ActivityLog.objects.values_list("object_repr", flat=True).get(pk=entry.pk) == stored


def test_a_cascade_entry_names_the_model_in_portuguese(admin_client):
    company = Company.objects.create(name="Acme Ltda")
    services.record_cascade(
        roots=[("accounts.company", str(company.pk), str(company))],
        cascade={"accounts.user": {"count": 2, "ids": ["a", "b"]}},
    )
    portuguese = _text(admin_client.get(f"{LIST}?action=cascade_delete", **PT))
    assert "2 linhas relacionadas removidas junto com 1 empresa" in portuguese
    english = _text(admin_client.get(f"{LIST}?action=cascade_delete", **EN))
    assert "2 related rows removed with 1 company" in english


def test_details_written_by_hand_fall_back_to_the_stored_text(admin_client):
    services.record_activity(
        action=services.PURGE,
        resource_type="core.mcpcache",
        object_repr="purged by a script",
        details={"deleted": "many"},
    )
    assert "purged by a script" in _text(admin_client.get(f"{LIST}?action=purge", **PT))
