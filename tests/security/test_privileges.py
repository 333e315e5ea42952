"""Privilege escalation through the admin forms: each attack is a hand-made POST.

Who may do what is asserted against the database afterwards (the user's flags, the
group's permission rows), not against the rendered page: the forms' choices are
narrowed too, but the server must refuse what a crafted request asks for anyway.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from accounts.roles import ADMINISTRATOR, OPERATOR, VIEWER
from tests.audit.support import PASSWORD, admin_url, form_data, login, make_user

pytestmark = pytest.mark.django_db


def perm(name: str) -> Permission:
    app, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app, codename=codename)


def client_for(user):
    client, response = login(user.email)
    assert response.status_code == 302
    return client


def change(client, obj, **fields):
    """Submit obj's own change form with ``fields`` replaced (lists for many-to-many)."""
    response = client.get(admin_url(type(obj), "change", obj.pk))
    data = form_data(response) if response.status_code == 200 else {}
    data.update(fields)
    return client.post(admin_url(type(obj), "change", obj.pk), data)


@pytest.fixture
def administrator():
    return make_user("administrator@example.com", ADMINISTRATOR)


@pytest.fixture
def superuser():
    return make_user("root@example.com", is_superuser=True)


def test_an_administrator_cannot_make_itself_superuser(administrator):
    client = client_for(administrator)
    change(client, administrator, is_superuser="on")
    administrator.refresh_from_db()
    assert not administrator.is_superuser


def test_an_administrator_cannot_make_another_user_superuser(administrator):
    other = make_user("other@example.com")
    change(client_for(administrator), other, is_superuser="on", email="other@example.com")
    other.refresh_from_db()
    assert not other.is_superuser


def test_an_administrator_cannot_touch_a_superuser(administrator, superuser):
    client = client_for(administrator)
    before = User.objects.get(pk=superuser.pk)
    # Demote, rename, take over by email, reset the password, delete: all refused.
    response = client.post(
        admin_url(User, "change", superuser.pk),
        {"email": "mine@example.com", "is_active": "on", "is_staff": "on"},
    )
    assert response.status_code == 403
    response = client.post(
        reverse("admin:auth_user_password_change", args=[superuser.pk]),
        {"password1": "Taken-over-9x", "password2": "Taken-over-9x"},
    )
    assert response.status_code == 403
    response = client.post(admin_url(User, "delete", superuser.pk), {"post": "yes"})
    assert response.status_code == 403
    response = client.post(
        admin_url(User, "changelist"),
        {"action": "delete_selected", "_selected_action": [superuser.pk], "post": "yes"},
    )
    after = User.objects.get(pk=superuser.pk)
    assert (after.email, after.password, after.is_superuser) == (
        before.email,
        before.password,
        True,
    )
    assert after.check_password(PASSWORD)


def test_only_a_superuser_grants_or_removes_superuser(superuser):
    other = make_user("promoted@example.com")
    client = client_for(superuser)
    assert change(client, other, is_superuser="on").status_code == 302
    other.refresh_from_db()
    assert other.is_superuser
    data = {"is_superuser": ""}
    change(client, other, **data)
    other.refresh_from_db()
    assert not other.is_superuser


@pytest.mark.parametrize(
    "who", [ADMINISTRATOR, "superuser"], ids=["as-administrator", "as-superuser"]
)
def test_audit_write_permissions_are_never_granted(who, administrator, superuser):
    actor = superuser if who == "superuser" else administrator
    client = client_for(actor)
    group = Group.objects.create(name="Auditors")
    writes = [perm("audit.change_activitylog"), perm("audit.delete_securityevent")]
    response = change(client, group, name="Auditors", permissions=[str(p.pk) for p in writes])
    assert response.status_code == 200  # the form again, with its error
    assert not group.permissions.exists()
    target = make_user("audit-writer@example.com")
    response = change(client, target, user_permissions=[str(p.pk) for p in writes])
    assert response.status_code == 200
    assert not target.user_permissions.exists()
    # Not even offered.
    page = client.get(admin_url(Group, "change", group.pk)).content.decode()
    assert f'value="{writes[0].pk}"' not in page


@pytest.fixture
def user_manager():
    """Someone trusted with users and groups but not with the data: view + manage."""
    user = make_user("manager@example.com", VIEWER)
    user.user_permissions.add(
        *[perm(n) for n in ("accounts.change_user", "auth.change_group", "auth.add_group")]
    )
    return user


def test_nobody_grants_a_permission_it_does_not_hold(user_manager):
    client = client_for(user_manager)
    target = make_user("target@example.com", VIEWER)
    delete_project = perm("core.delete_project")
    response = change(client, target, user_permissions=[str(delete_project.pk)])
    assert response.status_code == 200
    assert not target.user_permissions.exists()
    # Into its own account, the same.
    response = change(
        client,
        user_manager,
        user_permissions=[str(p.pk) for p in user_manager.user_permissions.all()]
        + [str(delete_project.pk)],
    )
    assert response.status_code == 200
    assert not user_manager.user_permissions.filter(pk=delete_project.pk).exists()
    # Through a group it may edit.
    group = Group.objects.create(name="Helpers")
    response = change(client, group, name="Helpers", permissions=[str(delete_project.pk)])
    assert response.status_code == 200 and not group.permissions.exists()
    # What it holds, it may pass on.
    view_project = perm("core.view_project")
    response = change(client, group, name="Helpers", permissions=[str(view_project.pk)])
    assert response.status_code == 302
    assert list(group.permissions.all()) == [view_project]


def test_nobody_gives_a_group_that_holds_more_than_itself(user_manager):
    client = client_for(user_manager)
    target = make_user("joiner@example.com")
    administrators = Group.objects.get(name=ADMINISTRATOR)
    for user in (target, user_manager):
        groups = [str(g.pk) for g in user.groups.all()] + [str(administrators.pk)]
        response = change(client, user, groups=groups)
        assert response.status_code == 200
        assert not user.groups.filter(pk=administrators.pk).exists()
    # A group within its own permissions is fine.
    viewers = Group.objects.get(name=VIEWER)
    assert change(client, target, groups=[str(viewers.pk)]).status_code == 302
    assert list(target.groups.all()) == [viewers]


def test_an_unrelated_save_keeps_what_the_editor_could_not_grant(user_manager):
    """Narrowed choices must not silently strip a higher group from the user edited."""
    target = make_user("keeps@example.com", OPERATOR)
    client = client_for(user_manager)
    response = change(client, target, first_name="Renamed")
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.first_name == "Renamed"
    assert list(target.groups.values_list("name", flat=True)) == [OPERATOR]


@pytest.mark.parametrize("role", [VIEWER, OPERATOR])
def test_viewers_and_operators_change_no_user_or_group(role):
    actor = make_user(f"{role.lower()}@example.com", role)
    client = client_for(actor)
    assert change(client, actor, is_superuser="on").status_code == 403
    group = Group.objects.get(name=role)
    response = change(client, group, name=role, permissions=[str(perm("core.delete_project").pk)])
    assert response.status_code == 403
    actor.refresh_from_db()
    assert not actor.is_superuser
    assert not group.permissions.filter(codename="delete_project").exists()


def test_migrate_takes_back_what_the_rule_does_not_give():
    viewers = Group.objects.get(name=VIEWER)
    other = Group.objects.create(name="Custom")
    someone = make_user("someone@example.com")
    audit_change = perm("audit.change_activitylog")
    viewers.permissions.add(perm("core.delete_project"), audit_change)
    other.permissions.add(audit_change, perm("core.view_project"))
    someone.user_permissions.add(audit_change)
    call_command("migrate", verbosity=0)
    assert not viewers.permissions.exclude(codename__startswith="view_").exists()
    assert list(other.permissions.values_list("codename", flat=True)) == ["view_project"]
    assert not someone.user_permissions.exists()
