"""Work that must leave a trace: CSV exports, cascades, own password changes, bulk actions.

Each test asserts the entry a compliance reader would look for (who, what, how many),
against an independent answer (the rows in the database before the change).
"""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Company
from audit import services
from audit.models import ActivityLog, SecurityEvent
from core.models import Automation, Project
from tests.audit.support import PASSWORD, login, make_user

pytestmark = pytest.mark.django_db


def only(**filters) -> ActivityLog:
    found = list(ActivityLog.objects.filter(**filters))
    assert len(found) == 1, found
    return found[0]


# --- CSV export ------------------------------------------------------------------


def export_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_export_csv")


def test_a_finished_csv_export_is_recorded_with_who_which_list_filters_and_rows():
    User = get_user_model()
    viewer = make_user("viewer@example.com", role="Viewer")
    for i in range(3):
        make_user(f"staff{i}@example.com")
    make_user("outsider@example.com", is_staff=False)
    client, _ = login(viewer.email)
    response = client.get(export_url(User), {"is_staff__exact": "1"})
    body = b"".join(response.streaming_content).decode()  # the test client closes it at the end
    expected = User.objects.filter(is_staff=True).count()
    assert len(body.strip().splitlines()) == expected + 1  # header + rows
    entry = only(action=services.EXPORT)
    assert entry.actor_email == viewer.email
    assert entry.resource_type == services.resource_type(User)
    assert entry.details["filters"] == {"is_staff__exact": "1"}
    assert entry.details["rows"] == expected
    assert entry.details["status"] == "finished"
    assert "password" not in entry.details["columns"]


def test_an_export_cut_off_by_the_client_is_recorded_with_the_rows_sent():
    admin = make_user("root@example.com", is_superuser=True)
    for i in range(6):
        Company.objects.create(name=f"Co {i}")
    client = Client()
    client.force_login(admin)
    response = client.get(export_url(Company))
    lines = iter(response.streaming_content)  # type: ignore[attr-defined]
    received = [next(lines) for _ in range(3)]  # the header and two rows, then hang up
    assert len(received) == 3
    assert not ActivityLog.objects.filter(action=services.EXPORT).exists()
    # The server closes the response when the client goes away; the test client's
    # wrapper of the stream does that when closed (without closing the test's connection).
    response._iterator.close()  # type: ignore[attr-defined]
    entry = only(action=services.EXPORT)
    assert entry.details["status"] == "cut_off"
    assert entry.details["rows"] == 2 < Company.objects.count()
    assert entry.actor_email == admin.email


# --- cascades ----------------------------------------------------------------------


@pytest.fixture
def company(db):
    owner = make_user("owner@example.com")
    company = Company.objects.create(name="Doomed Co")
    projects = [
        Project.objects.create(name=f"P{i}", company=company, owner=owner) for i in range(2)
    ]
    automations = [
        Automation.objects.create(name=f"A{i}", type="n8n", project=p)
        for i, p in enumerate(projects)
    ]
    return company, projects, automations


def _expected(projects, automations) -> dict[str, set[str]]:
    return {
        services.resource_type(Project): {str(p.pk) for p in projects},
        services.resource_type(Automation): {str(a.pk) for a in automations},
    }


def _removed(entry: ActivityLog) -> dict[str, set[str]]:
    return {label: set(v["ids"]) for label, v in entry.details["removed"].items()}


def test_the_rows_a_cascading_delete_removes_are_listed_in_one_entry(company):
    company, projects, automations = company
    admin = make_user("root@example.com", is_superuser=True)
    client = Client()
    client.force_login(admin)
    url = reverse("admin:accounts_company_delete", args=[company.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk__in=[p.pk for p in projects]).exists()
    entry = only(action=services.CASCADE_DELETE)
    assert entry.resource_type == services.resource_type(Company)
    assert entry.resource_id == str(company.pk)
    assert entry.actor_email == admin.email
    removed = _removed(entry)
    for label, ids in _expected(projects, automations).items():
        assert removed[label] == ids
    assert entry.details["total"] == sum(v["count"] for v in entry.details["removed"].values())
    # and the company's own delete entry is there too
    only(action=services.DELETE, resource_id=str(company.pk))


def test_bulk_delete_selected_records_the_action_and_the_cascade(company):
    company, projects, automations = company
    other = Company.objects.create(name="Empty Co")
    admin = make_user("root@example.com", is_superuser=True)
    client = Client()
    client.force_login(admin)
    url = reverse("admin:accounts_company_changelist")
    selection = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [company.pk, other.pk]}
    confirm = client.post(url, selection)
    assert confirm.status_code == 200  # the confirmation page: nothing changed yet
    assert not ActivityLog.objects.filter(action=services.BULK_ACTION).exists()
    done = client.post(url, {**selection, "post": "yes"})
    assert done.status_code == 302
    assert not Company.objects.filter(pk__in=[company.pk, other.pk]).exists()
    bulk = only(action=services.BULK_ACTION)
    assert bulk.details["name"] == "delete_selected"
    assert set(bulk.details["ids"]) == {str(company.pk), str(other.pk)}
    assert bulk.details["count"] == 2
    cascade = only(action=services.CASCADE_DELETE)
    assert {r["id"] for r in cascade.details["roots"]} == {str(company.pk), str(other.pk)}
    for label, ids in _expected(projects, automations).items():
        assert _removed(cascade)[label] == ids


def test_any_other_admin_action_is_recorded(monkeypatch):
    from django.contrib import admin as django_admin

    model_admin = django_admin.site._registry[Company]

    def rename(modeladmin, request, queryset):
        queryset.update(name="renamed")  # bypasses the per-object audit on purpose

    rename.short_description = "Rename"  # type: ignore[attr-defined]
    monkeypatch.setattr(type(model_admin), "actions", ["delete_selected", rename], raising=False)
    companies = [Company.objects.create(name=f"C{i}") for i in range(3)]
    admin = make_user("root@example.com", is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post(
        reverse("admin:accounts_company_changelist") + "?is_active__exact=1",
        {"action": "rename", ACTION_CHECKBOX_NAME: [c.pk for c in companies[:2]]},
    )
    assert response.status_code == 302
    assert Company.objects.filter(name="renamed").count() == 2
    entry = only(action=services.BULK_ACTION)
    assert entry.details["name"] == "rename"
    assert set(entry.details["ids"]) == {str(c.pk) for c in companies[:2]}
    assert entry.details["filters"] == {"is_active__exact": "1"}
    assert entry.actor_email == admin.email


# --- own password ------------------------------------------------------------------


def test_a_users_own_password_change_is_an_activity_entry_and_a_security_event():
    user = make_user("self@example.com", role="Viewer")
    client, _ = login(user.email)
    new = "another-Horse-battery-7"
    response = client.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    entry = only(action=services.PASSWORD_CHANGE)
    assert entry.resource_id == str(user.pk)
    assert entry.actor_email == user.email
    assert entry.details["own"] is True
    assert user.password not in str(entry.details)
    assert SecurityEvent.objects.filter(event_type="password_change", user_id=user.pk).count() == 1


def test_a_password_set_in_a_shell_is_an_activity_entry():
    user = make_user("shell@example.com")
    user.set_password("shell-Horse-battery-5")
    user.save()
    entry = only(action=services.PASSWORD_CHANGE)
    assert entry.resource_id == str(user.pk) and entry.details["own"] is False
    assert entry.actor_email == ""


def test_the_admin_password_form_for_another_user_writes_its_change_entry_only():
    target = make_user("target@example.com")
    admin = make_user("root@example.com", is_superuser=True)
    client = Client()
    client.force_login(admin)
    new = "target-Horse-battery-3"
    url = reverse("admin:auth_user_password_change", args=[target.pk])
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    assert not ActivityLog.objects.filter(action=services.PASSWORD_CHANGE).exists()
    assert ActivityLog.objects.filter(action=services.CHANGE, resource_id=str(target.pk)).exists()
