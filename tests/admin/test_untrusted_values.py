"""Values an attacker controls: filter values that cannot reach SQL, JSON that jsonb
refuses, and secrets in JSON config that a Viewer must not read.

Each test replays the attack (as a Viewer unless change rights are the point) and
checks the answer and the stored data, not only the status.
"""

import html
from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse
from model_bakery import baker

from accounts.roles import ADMINISTRATOR, VIEWER
from audit.models import ActivityLog
from audit.services import MASK
from core.models import Automation
from tests.audit.support import admin_url, form_data, login, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    client, response = login(make_user("viewer@example.com", VIEWER).email)
    assert response.status_code == 302
    return client


@pytest.fixture
def administrator():
    client, response = login(make_user("administrator@example.com", ADMINISTRATOR).email)
    assert response.status_code == 302
    return client


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("/admin/audit/securityevent/", "ip_address=1", "is not an IP address"),
        ("/admin/audit/activitylog/", "ip_address=999.1.1.1", "is not an IP address"),
        ("/admin/axes/accessattempt/", "ip_address=1", "is not an IP address"),
        ("/admin/analytics/usersession/", "ip_address=x", "is not an IP address"),
        ("/admin/audit/securityevent/", "ip_address__in=10.0.0.1,1", "is not an IP address"),
        ("/admin/audit/activitylog/", "id=not-a-uuid", "is not a UUID"),
        ("/admin/audit/activitylog/", "created_at__gte=2024-13-45", "is not a valid date"),
        ("/admin/audit/activitylog/", "resource_id=a%00b", "contains a NUL character"),
        ("/admin/accounts/company/", "max_users=99999999999999999999", "out of range"),
        ("/admin/accounts/company/", "is_active__isnull=maybe", "is not true or false"),
        ("/admin/audit/securityevent/", "prev_hash=", "is binary data"),
        ("/admin/audit/activitylog/", "row_hash__contains=ab", "is binary data"),
        ("/admin/audit/activitylog/", "row_hash__in=ab,cd", "is binary data"),
    ],
)
def test_a_bad_filter_value_gives_the_list_and_says_why(viewer, path, query, reason):
    response = viewer.get(f"{path}?{query}&o=1")
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert reason in text and "ignored" in text


def test_a_bad_filter_value_does_not_reach_the_export(administrator):
    response = administrator.get(reverse("admin:audit_securityevent_export_csv") + "?ip_address=1")
    assert response.status_code == 302
    follow = administrator.get(response["Location"])
    assert follow.status_code == 200 and "is not an IP address" in follow.content.decode()


@pytest.mark.parametrize("page", ["queries", "maintenance"])
def test_a_nul_in_the_diagnostics_search_is_a_message(viewer, page):
    response = viewer.get(reverse(f"admin:diagnostics_{page}") + "?q=%00")
    assert response.status_code == 200
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ('{"a": 1e999}', "too large to store"),
        ('{"a": -1e400}', "too large to store"),
        ('{"a": NaN}', "Enter valid JSON"),
        ("[" * 5000 + "]" * 5000, "nested at most 100 levels"),
        ('{"a": ' * 101 + "1" + "}" * 101, "nested at most 100 levels"),
    ],
    ids=["1e999", "-1e400", "NaN", "5000-deep", "101-deep"],
)
def test_json_that_jsonb_refuses_is_a_form_error(administrator, config, reason):
    automation = baker.make(Automation, config={"kept": True})
    data = form_data(administrator.get(admin_url(Automation, "change", automation.pk)))
    data["config"] = config
    entries = ActivityLog.objects.count()
    response = administrator.post(admin_url(Automation, "change", automation.pk), data)
    assert response.status_code == 200
    assert reason in html.unescape(response.content.decode())
    automation.refresh_from_db()
    assert automation.config == {"kept": True}
    assert ActivityLog.objects.count() == entries


def test_json_a_hundred_levels_deep_is_still_accepted(administrator):
    automation = baker.make(Automation, config={})
    data = form_data(administrator.get(admin_url(Automation, "change", automation.pk)))
    data["config"] = '{"a": ' * 99 + "1" + "}" * 99
    assert (
        administrator.post(admin_url(Automation, "change", automation.pk), data).status_code == 302
    )


SECRET_CONFIG = {
    "api_key": "sk-live-Zq7apikey",
    "webhook": "https://bot:Zq7urlpass@hooks.example.com/x",
    "nested": {"Authorization": "Bearer Zq7bearer", "retries": 3},
    "url": "https://hooks.example.com/ok",
}


def test_a_viewer_never_sees_secrets_in_json_config(viewer, administrator):
    automation = baker.make(Automation, name="Leaky", config=SECRET_CONFIG)
    for client, shows in ((viewer, False), (administrator, True)):
        page = html.unescape(
            client.get(admin_url(Automation, "change", automation.pk)).content.decode()
        )
        csv = b"".join(
            client.get(reverse("admin:core_automation_export_csv")).streaming_content
        ).decode()
        listing = html.unescape(client.get(admin_url(Automation, "changelist")).content.decode())
        for text in (page, csv):
            assert ("Zq7" in text) is shows, (shows, text[:500])
            assert "https://hooks.example.com/ok" in text  # what is not secret stays
        assert "Zq7" not in listing or shows
    viewer_page = viewer.get(admin_url(Automation, "change", automation.pk)).content.decode()
    assert MASK in viewer_page  # the audit trail's own mask
    automation.refresh_from_db()
    assert automation.config == SECRET_CONFIG  # masked on the way out only


def test_every_json_column_is_masked_for_viewers(viewer):
    """Whatever model gets a JSON column later: a Viewer's detail page masks it."""
    for model in admin.site._registry:
        fields = [f for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"]
        if not fields:
            continue
        values: dict[str, Any] = {f.name: {"token": "Zq7token"} for f in fields}
        obj = baker.make(model._meta.label, **values)
        response = viewer.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200, model
        assert "Zq7token" not in response.content.decode(), model


def test_a_filter_on_the_stored_search_document_is_a_message_not_a_500(admin_client):
    # Found by the typed fuzz: a value compared with the generated tsvector column is
    # parsed by PostgreSQL as a tsvector and fails there (a backslash is a syntax error).
    response = admin_client.get("/admin/core/executionhistory/", {"search_document__in": "\\"})
    assert response.status_code == 200
    assert any("search_document" in str(m) for m in response.context["messages"])
