"""Viewer, Operator and Administrator: what each can and cannot reach, pages and POSTs.

Each role logs in through the login form. The diagnostics pages are built elsewhere;
their permissions are asserted by codename, and any extra admin page that exists is
checked for what a Viewer can do there.
"""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.roles import ADMINISTRATOR, OPERATOR, ROLES, VIEWER
from audit.models import ActivityLog
from core.models import McpCache
from portal.admin.site import PortalAdminSite
from tests.audit.support import PASSWORD, admin_url, form_data, login, make_user, sample_objects

pytestmark = pytest.mark.django_db
MODELS = list(admin.site._registry)


@pytest.fixture
def clients(db):
    result = {}
    for role in ROLES:
        user = make_user(f"{role.lower()}@example.com", role=role)
        client, response = login(user.email)
        assert response.status_code == 302, f"{role} could not log in"
        result[role] = client
    return result


@pytest.fixture
def objects(db):
    owner = make_user("owner@example.com", is_staff=False)
    return sample_objects(owner)


def can_write(model, kind: str) -> bool:
    """What the ModelAdmin allows anyone at all (read-only admins allow nothing)."""
    model_admin = admin.site._registry[model]
    su = User(is_superuser=True, is_active=True, is_staff=True)
    request = type("R", (), {"user": su})()
    return getattr(model_admin, f"has_{kind}_permission")(request)


def expect(role: str, model, kind: str) -> bool:
    if not can_write(model, kind):
        return False
    if role == ADMINISTRATOR:
        return True
    return role == OPERATOR and model is McpCache and kind == "delete"


def test_the_three_groups_exist_with_the_documented_permissions():
    def perms(role):
        group = Group.objects.get(name=role)
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }

    viewer, operator, administrator = perms(VIEWER), perms(OPERATOR), perms(ADMINISTRATOR)
    assert all(p.split(".")[1].startswith("view_") for p in viewer)
    assert {
        "diagnostics.view_diagnostics",
        "core.view_mcpcache",
        "accounts.view_user",
        "audit.view_activitylog",
        "auth.view_group",
    } <= viewer
    assert operator - viewer == {"diagnostics.signal_backend", "core.delete_mcpcache"}
    assert {
        "diagnostics.signal_backend",
        "diagnostics.reset_query_stats",
        "accounts.add_user",
        "accounts.change_user",
        "auth.change_group",
        "axes.delete_accessattempt",
    } <= administrator
    assert not {
        p for p in administrator if p.startswith(("audit.add", "audit.change", "audit.delete"))
    }


@pytest.mark.parametrize("role", ROLES)
def test_diagnostics_permissions_by_role(role):
    user = make_user(f"d-{role.lower()}@example.com", role=role)
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    assert user.has_perm("diagnostics.view_diagnostics")
    assert user.has_perm("diagnostics.signal_backend") == (role in (OPERATOR, ADMINISTRATOR))
    assert user.has_perm("diagnostics.reset_query_stats") == (role == ADMINISTRATOR)
    assert user.has_perm("core.delete_mcpcache") == (role in (OPERATOR, ADMINISTRATOR))
    assert user.has_perm("accounts.change_user") == (role == ADMINISTRATOR)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_admin_page(clients, objects, role):
    client = clients[role]
    assert client.get(reverse("admin:index")).status_code == 200
    for model in MODELS:
        assert client.get(admin_url(model, "changelist")).status_code == 200, model
        obj = objects[model]
        assert client.get(admin_url(model, "change", obj.pk)).status_code == 200, model
        assert client.get(admin_url(model, "history", obj.pk)).status_code in (200, 302)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_writes_by_role(clients, objects, role, model):
    client = clients[role]
    obj = objects[model]
    entries = ActivityLog.objects.count()

    add = client.get(admin_url(model, "add"))
    assert (add.status_code == 200) == expect(role, model, "add"), "add page"
    if not expect(role, model, "add"):
        assert add.status_code == 403
        assert client.post(admin_url(model, "add"), {}).status_code == 403

    # Resubmit the object's own form (what the change page would send).
    page = client.get(admin_url(model, "change", obj.pk))
    data = form_data(page) if "adminform" in page.context else {}
    changed = client.post(admin_url(model, "change", obj.pk), data)
    if expect(role, model, "change"):
        assert changed.status_code in (200, 302)
    else:
        assert changed.status_code == 403

    deleted = client.post(admin_url(model, "delete", obj.pk), {"post": "yes"})
    gone = not model._base_manager.filter(pk=obj.pk).exists()
    if expect(role, model, "delete"):
        assert deleted.status_code == 302 and gone
        assert ActivityLog.objects.filter(action="delete", resource_id=str(obj.pk)).exists()
    else:
        assert deleted.status_code == 403 and not gone
        assert ActivityLog.objects.count() == entries  # refused writes leave no entry


@pytest.mark.parametrize("role", [VIEWER, OPERATOR])
def test_non_administrators_cannot_manage_users_or_groups(clients, role):
    client = clients[role]
    response = client.post(
        admin_url(User, "add"),
        {"email": "evil@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="evil@example.com").exists()
    viewer = User.objects.get(email="viewer@example.com")
    response = client.post(
        reverse("admin:auth_user_password_change", args=[viewer.pk]),
        {"password1": "x", "password2": "x"},
    )
    assert response.status_code == 403
    response = client.post(admin_url(Group, "add"), {"name": "Escalate"})
    assert response.status_code == 403 and not Group.objects.filter(name="Escalate").exists()


def test_an_administrator_adds_a_user_and_grants_a_role(clients):
    client = clients[ADMINISTRATOR]
    response = client.post(
        admin_url(User, "add"),
        {
            "email": "hire@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    hire = User.objects.get(email="hire@example.com")
    data = form_data(client.get(admin_url(User, "change", hire.pk)))
    data.update(is_staff="on", groups=[str(Group.objects.get(name=VIEWER).pk)])
    assert client.post(admin_url(User, "change", hire.pk), data).status_code == 302
    assert list(hire.groups.values_list("name", flat=True)) == [VIEWER]
    assert (
        ActivityLog.objects.filter(
            resource_id=str(hire.pk), actor_email="administrator@example.com"
        ).count()
        == 2
    )


def test_operator_deletes_cache_entries_but_nothing_else(clients, objects):
    client = clients[OPERATOR]
    expired_at = timezone.now() - datetime.timedelta(hours=1)
    cache = [McpCache.objects.create(tool_name=f"t{i}", expires_at=expired_at) for i in range(2)]
    # The purge of expired entries (one audited entry with the count) ...
    response = client.post(reverse("admin:core_mcpcache_purge_expired"))
    assert response.status_code == 302
    assert not McpCache.objects.filter(pk__in=[c.pk for c in cache]).exists()
    purge = ActivityLog.objects.get(action="purge", resource_type="core.mcpcache")
    assert purge.actor_email == "operator@example.com" and purge.details["deleted"] == 2
    # ... and deleting one entry from its page.
    entry = McpCache.objects.create(tool_name="one")
    response = client.post(admin_url(McpCache, "delete", entry.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not McpCache.objects.filter(pk=entry.pk).exists()
    assert ActivityLog.objects.filter(
        action="delete", resource_type="core.mcpcache", actor_email="operator@example.com"
    ).exists()


assert isinstance(admin.site, PortalAdminSite)
EXTRA_URLS = [p for p in admin.site.extra_urls() if not p.pattern.converters]


@pytest.mark.parametrize("pattern", EXTRA_URLS, ids=lambda p: str(p.pattern))
def test_a_viewer_changes_nothing_on_extra_pages(clients, pattern):
    url = reverse(f"admin:{pattern.name}")
    entries = ActivityLog.objects.count()
    # 405: an action URL that only takes POST.
    assert clients[VIEWER].get(url).status_code in (200, 302, 403, 405)
    assert clients[VIEWER].post(url, {"pid": "1", "action": "terminate"}).status_code in (
        200,
        302,
        403,
        405,
    )
    assert ActivityLog.objects.count() == entries


def test_permissions_of_models_added_later_join_the_roles_at_migrate():
    content_type = ContentType.objects.create(app_label="core", model="newthing")
    for codename in ("view_newthing", "delete_newthing"):
        Permission.objects.create(content_type=content_type, codename=codename, name=codename)
    call_command("migrate", verbosity=0)
    viewer = set(Group.objects.get(name=VIEWER).permissions.values_list("codename", flat=True))
    admin_ = set(
        Group.objects.get(name=ADMINISTRATOR).permissions.values_list("codename", flat=True)
    )
    assert "view_newthing" in viewer and "delete_newthing" not in viewer
    assert {"view_newthing", "delete_newthing"} <= admin_
    # The change went through the audit trail like any other role change.
    assert ActivityLog.objects.filter(
        resource_type="auth.group",
        details__changes__permissions__new__contains="core.view_newthing",
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_roles_survive_a_flush():
    call_command("flush", interactive=False, verbosity=0)
    for role in ROLES:
        assert Group.objects.get(name=role).permissions.exists()
