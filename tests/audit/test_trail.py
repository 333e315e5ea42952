"""Every admin create/change/delete leaves one audit entry, in the same transaction."""

import pytest
from django.contrib.admin import ModelAdmin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Company, User
from audit.models import ActivityLog, SecurityEvent
from audit.services import MASK, record_activity, record_cache_purge
from core.models import Automation, Project
from tests.audit.support import PASSWORD, activity, admin_url, events, form_data, make_user
from tests.db import roles

pytestmark = pytest.mark.django_db

COMPANY = {
    "name": "Acme",
    "domain": "",
    "subscription_plan": "free",
    "max_users": 10,
    "is_active": "on",
}


def all_audit_text() -> str:
    """Every audit row of both tables as text, to search for leaked secrets."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(string_agg(a::text, ' '), '') FROM audit.activity_logs a "
            "UNION ALL SELECT coalesce(string_agg(s::text, ' '), '') FROM audit.security_events s"
        )
        return " ".join(row[0] for row in cursor.fetchall())


def entries_for(obj) -> list[ActivityLog]:
    return activity(resource_type=obj._meta.label_lower, resource_id=str(obj.pk))


def test_creating_in_the_admin_records_every_field(admin_client, admin_user):
    response = admin_client.post(admin_url(Company, "add"), COMPANY)
    assert response.status_code == 302
    company = Company.objects.get(name="Acme")
    [entry] = entries_for(company)
    assert entry.action == "create"
    assert entry.user_id == admin_user.pk
    assert entry.actor_email == admin_user.email
    assert entry.object_repr == "Acme"
    assert entry.details["changes"]["name"] == {"old": None, "new": "Acme"}
    assert entry.details["changes"]["max_users"] == {"old": None, "new": 10}
    assert "updated_at" not in entry.details["changes"]


def test_changing_records_only_the_changed_fields(admin_client):
    company = Company.objects.create(name="Acme")
    admin_client.post(admin_url(Company, "change", company.pk), {**COMPANY, "max_users": 25})
    [entry] = entries_for(company)
    assert entry.action == "change"
    assert entry.details["changes"] == {"max_users": {"old": 10, "new": 25}}


def test_a_save_that_changes_nothing_writes_no_entry(admin_client):
    company = Company.objects.create(name="Acme")
    response = admin_client.post(admin_url(Company, "change", company.pk), COMPANY)
    assert response.status_code == 302
    assert LogEntry.objects.filter(object_id=str(company.pk)).exists()  # Django logged it
    assert entries_for(company) == []


def test_deleting_records_the_last_state(admin_client):
    company = Company.objects.create(name="Doomed", domain="doomed.example")
    response = admin_client.post(admin_url(Company, "delete", company.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Company.objects.filter(pk=company.pk).exists()
    [entry] = entries_for(company)
    assert entry.action == "delete"
    assert entry.details["changes"]["domain"] == {"old": "doomed.example", "new": None}


def test_bulk_delete_records_one_entry_per_object(admin_client):
    companies = [Company.objects.create(name=f"Bulk {i}") for i in range(3)]
    response = admin_client.post(
        admin_url(Company, "changelist"),
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [str(c.pk) for c in companies[:2]],
        },
    )
    assert response.status_code == 302
    assert Company.objects.filter(name__startswith="Bulk").count() == 1
    for company in companies[:2]:
        [entry] = entries_for(company)
        assert entry.action == "delete" and entry.details["bulk"] is True
    assert entries_for(companies[2]) == []


def test_secrets_in_json_and_urls_are_masked(admin_client, admin_user):
    company = Company.objects.create(name="Acme")
    project = Project.objects.create(name="P", company=company, owner=admin_user)
    response = admin_client.get(admin_url(Automation, "add"))
    data = {
        **{k: v for k, v in form_data(response).items()},
        "name": "Hook",
        "type": "n8n",
        "project": str(project.pk),
        "is_active": "on",
        "config": '{"apiKey": "sk-live-123", "url": "https://bot:hunter22@n8n.example/x",'
        ' "headers": {"Authorization": "Bearer abc.def"}, "retries": 3}',
    }
    assert admin_client.post(admin_url(Automation, "add"), data).status_code == 302
    [entry] = entries_for(Automation.objects.get(name="Hook"))
    config = entry.details["changes"]["config"]["new"]
    assert config["apiKey"] == MASK
    assert config["headers"]["Authorization"] == MASK
    assert config["url"] == f"https://bot:{MASK}@n8n.example/x"
    assert config["retries"] == 3
    text = all_audit_text()
    assert "sk-live-123" not in text and "hunter22" not in text and "abc.def" not in text


def test_password_hashes_never_reach_the_audit_trail(admin_client):
    response = admin_client.post(
        admin_url(User, "add"),
        {
            "email": "new@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    [entry] = entries_for(user)
    assert entry.details["changes"]["password"]["new"] == MASK
    # And through the password view, which Django does not run in a transaction.
    new_password = "an0ther-Long-passphrase"
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    change = entries_for(user)[-1]
    assert change.action == "change"
    assert change.details["changes"] == {"password": {"old": MASK, "new": MASK}}
    assert [e.event_type for e in events(user=user)] == ["password_change"]
    text = all_audit_text()
    assert user.password not in text
    assert user.password.split("$")[-1] not in text
    assert new_password not in text and PASSWORD not in text


def test_group_membership_change_in_the_admin_is_one_entry_and_one_security_event(admin_client):
    user = make_user("ops@example.com", role="Viewer")
    response = admin_client.get(admin_url(User, "change", user.pk))
    data = form_data(response)
    data["groups"] = [str(Group.objects.get(name="Operator").pk)]
    entries, security = len(entries_for(user)), len(events(user=user))  # the set-up's
    assert admin_client.post(admin_url(User, "change", user.pk), data).status_code == 302
    [entry] = entries_for(user)[entries:]
    assert entry.details["changes"] == {"groups": {"old": ["Viewer"], "new": ["Operator"]}}
    # The form sets the groups: Django removes, then adds; one security event each.
    removed, added = events(user=user)[security:]
    assert {removed.event_type, added.event_type} == {"group_change"}
    assert (removed.details["removed"], added.details["added"]) == (["Viewer"], ["Operator"])


def test_group_permission_change_in_the_admin_is_audited(admin_client):
    group = Group.objects.create(name="Auditors")
    perm = Permission.objects.get(codename="view_activitylog")
    response = admin_client.post(
        admin_url(Group, "change", group.pk), {"name": "Auditors", "permissions": [perm.pk]}
    )
    assert response.status_code == 302
    [entry] = entries_for(group)
    assert entry.details["changes"] == {
        "permissions": {"old": [], "new": ["audit.view_activitylog"]}
    }
    [event] = events(event_type="permission_change", details__resource_id=str(group.pk))
    assert event.details["added"] == ["audit.view_activitylog"]


def test_role_changes_outside_the_admin_are_audited_from_either_side(db):
    user = make_user("shell@example.com")
    operator = Group.objects.get(name="Operator")
    before = ActivityLog.objects.count()
    user.groups.add(operator)
    operator.user_set.remove(user)
    assert ActivityLog.objects.count() == before + 2
    added, removed = entries_for(user)[-2:]
    assert added.details["changes"]["groups"] == {"old": [], "new": ["Operator"]}
    assert removed.details["changes"]["groups"] == {"old": ["Operator"], "new": []}
    assert [e.event_type for e in events(user=user)] == ["group_change", "group_change"]


def test_the_history_button_opens_the_objects_audit_entries(admin_client):
    company = Company.objects.create(name="Acme")
    other = Company.objects.create(name="Other")
    admin_client.post(admin_url(Company, "change", company.pk), {**COMPANY, "max_users": 11})
    admin_client.post(admin_url(Company, "change", other.pk), {**COMPANY, "name": "Other2"})
    response = admin_client.get(admin_url(Company, "history", company.pk))
    assert response.status_code == 302
    listing = admin_client.get(response["Location"])
    assert listing.status_code == 200
    [shown] = listing.context["cl"].result_list
    assert shown.resource_id == str(company.pk)
    detail = admin_client.get(admin_url(ActivityLog, "change", shown.pk))
    html = detail.content.decode()
    assert "audit-diff" in html and "Before" in html and "max_users" in html


def test_audit_pages_are_read_only_even_for_a_superuser(admin_client):
    entry = record_activity(action="x")
    assert entry is not None
    assert admin_client.get(admin_url(ActivityLog, "add")).status_code == 403
    assert admin_client.post(admin_url(ActivityLog, "change", entry.pk), {}).status_code == 403
    response = admin_client.post(admin_url(ActivityLog, "delete", entry.pk), {"post": "yes"})
    assert response.status_code == 403
    assert ActivityLog.objects.filter(pk=entry.pk).exists()
    list_page = admin_client.get(admin_url(ActivityLog, "changelist"))
    assert list_page.status_code == 200
    filters = {spec.title for spec in list_page.context["cl"].filter_specs}
    assert {"actor", "action", "resource type", "created at"} <= filters
    assert admin_client.get(admin_url(SecurityEvent, "changelist")).status_code == 200


def test_the_cache_purge_and_diagnostics_style_calls_fill_in_the_request(admin_user):
    request = RequestFactory().post(
        "/admin/diagnostics/activity/", REMOTE_ADDR="192.0.2.5", HTTP_USER_AGENT="ua"
    )
    request.user = admin_user
    entry = record_cache_purge(deleted=42, request=request)
    assert entry is not None
    assert (entry.action, entry.resource_type, entry.details["deleted"]) == (
        "purge",
        "core.mcpcache",
        42,
    )
    assert entry.actor_email == admin_user.email and entry.ip_address == "192.0.2.5"
    entry = record_activity(
        actor=admin_user,
        action="terminate_backend",
        resource_type="pg.backend",
        resource_id=4242,
        object_repr="pid 4242",
        details={"query": "select 1", "conninfo": {"password": "pw"}},
        request=request,
    )
    assert entry is not None
    assert entry.resource_id == "4242" and entry.request_id
    assert entry.details["conninfo"] == {"password": MASK}


# --- one transaction for the change and its entry ------------------------------------


@pytest.fixture
def boom(monkeypatch):
    """Make the admin fail right after it saved and audited the change."""

    def explode(*args, **kwargs):
        raise RuntimeError("failure after the change")

    monkeypatch.setattr(ModelAdmin, "response_change", explode)
    monkeypatch.setattr(ModelAdmin, "response_delete", explode)


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_change_rolls_back_change_and_entry(boom, django_user_model):
    admin = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client = Client()
    client.force_login(admin)
    company = Company.objects.create(name="Acme")
    with pytest.raises(RuntimeError):
        client.post(admin_url(Company, "change", company.pk), {**COMPANY, "max_users": 99})
    with pytest.raises(RuntimeError):
        client.post(admin_url(Company, "delete", company.pk), {"post": "yes"})
    company.refresh_from_db()
    assert company.max_users == 10
    assert entries_for(company) == []


@pytest.fixture
def audit_insert_fails():
    """A real database failure on the audit insert."""
    with roles.inserts_refused("audit", "activity_logs", "audit insert failed"):
        yield


@pytest.mark.django_db(transaction=True)
def test_a_failing_audit_insert_rolls_back_the_change(audit_insert_fails, django_user_model):
    admin = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client = Client()
    client.force_login(admin)
    companies = [Company.objects.create(name=f"Keep {i}") for i in range(2)]
    with pytest.raises(DatabaseError, match="audit insert failed"):
        client.post(admin_url(Company, "change", companies[0].pk), {**COMPANY, "max_users": 5})
    with pytest.raises(DatabaseError, match="audit insert failed"):
        client.post(
            admin_url(Company, "changelist"),
            {
                "action": "delete_selected",
                "post": "yes",
                "_selected_action": [str(c.pk) for c in companies],
            },
        )
    with pytest.raises(DatabaseError, match="audit insert failed"):
        client.post(admin_url(Company, "add"), {**COMPANY, "name": "Never"})
    assert Company.objects.filter(name__startswith="Keep", max_users=10).count() == 2
    assert not Company.objects.filter(name="Never").exists()


def test_the_activity_log_list_reads_details_only_for_the_rows_it_describes(admin_client):
    record_cache_purge(deleted=1234)
    record_activity(
        action="change",
        resource_type="core.project",
        resource_id="1",
        object_repr="a project",
        details={"changes": {"name": {"old": "a", "new": "b"}}},
    )
    # Written past the services' own masking (as a row from elsewhere would be): the list
    # masks what it shows of the details too.
    ActivityLog.objects.create(
        action="bulk_action",
        resource_type="core.project",
        details={"name": "sync Bearer sk-live-0123456789abcdef", "count": 2},
    )
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/audit/activitylog/")
    page = response.content.decode()
    assert "1,234 expired tool cache entries" in page
    assert "2 projects" in page
    assert "sk-live-0123456789abcdef" not in page
    reads = [q["sql"] for q in queries if 'FROM "audit"."activity_logs"' in q["sql"]]
    rows = [sql for sql in reads if '"activity_logs"."object_repr"' in sql]  # the page's rows
    assert rows and all('"activity_logs"."details"' not in sql for sql in rows), rows
    # One query for the details of the two described rows, none per row.
    with_details = [sql for sql in reads if '"activity_logs"."details"' in sql]
    assert len(with_details) == 1, with_details


def test_the_security_event_list_does_not_read_the_details(admin_client):
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get("/admin/audit/securityevent/").status_code == 200
    reads = [q["sql"] for q in queries if 'FROM "audit"."security_events"' in q["sql"]]
    assert reads and all('"security_events"."details"' not in sql for sql in reads), reads
