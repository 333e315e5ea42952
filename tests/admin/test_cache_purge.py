"""Purging expired tool cache entries: a confirmation page, one DELETE, CSRF, permission."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import McpCache
from core.services import mcp_cache_purge_expired

pytestmark = pytest.mark.django_db

PURGE = "/admin/core/mcpcache/purge-expired/"


@pytest.fixture
def entries():
    now = timezone.now()
    expired = [
        McpCache(tool_name="web.fetch", expires_at=now - datetime.timedelta(minutes=i + 1))
        for i in range(3)
    ]
    keep = [
        McpCache(tool_name="web.fetch", expires_at=now + datetime.timedelta(hours=1)),
        McpCache(tool_name="docs.lookup", expires_at=None),
    ]
    McpCache.objects.bulk_create(expired + keep)
    return now


def test_the_confirmation_page_shows_how_many_expired(admin_client, entries):
    response = admin_client.get(PURGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>3</strong> tool cache entries have expired" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert McpCache.objects.count() == 5


def test_confirming_purges_only_expired_entries_in_one_statement(admin_client, entries):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(PURGE, follow=True)
    assert "Purged 3 expired tool cache entries." in response.content.decode()
    assert sorted(McpCache.objects.values_list("tool_name", flat=True)) == [
        "docs.lookup",
        "web.fetch",
    ]
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 1 and "SELECT" not in deletes[0]


def test_the_purge_needs_a_csrf_token(admin_user, entries):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(PURGE).status_code == 403
    assert McpCache.objects.count() == 5


def test_the_purge_needs_the_delete_permission(client, django_user_model, entries):
    user = django_user_model.objects.create_user(
        email="viewer@example.com", password="x-Pa55word-long", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_mcpcache"))
    client.force_login(user)
    assert client.get(PURGE).status_code == 403
    assert client.post(PURGE).status_code == 403
    assert b"Purge expired entries" not in client.get("/admin/core/mcpcache/").content
    assert McpCache.objects.count() == 5


def test_the_cache_list_filters_expired_entries(admin_client, entries):
    page = admin_client.get("/admin/core/mcpcache/?expired=yes").content.decode()
    assert page.count(">expired</span>") == 3 and ">valid</span>" not in page


def test_the_service_returns_how_many_it_removed(entries):
    assert mcp_cache_purge_expired(now=entries - datetime.timedelta(minutes=2)) == 1
    assert mcp_cache_purge_expired() == 2
    assert mcp_cache_purge_expired() == 0


def test_the_purge_is_audited_with_its_count(admin_client, admin_user, entries):
    from audit.models import ActivityLog

    admin_client.post(PURGE)
    entry = ActivityLog.objects.get(resource_type="core.mcpcache", action="purge")
    assert entry.actor_email == admin_user.email
    assert entry.details["deleted"] == 3


def test_a_failed_audit_entry_undoes_the_purge(admin_client, entries, monkeypatch):
    import core.admin

    def refuse(**kwargs):
        raise RuntimeError("audit insert failed")

    monkeypatch.setattr(core.admin, "record_cache_purge", refuse)
    with pytest.raises(RuntimeError):
        admin_client.post(PURGE)
    assert McpCache.objects.count() == 5
