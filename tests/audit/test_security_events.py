"""Security events: logins, logouts, lockouts, password and privilege changes."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, Permission
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import SecurityEvent
from tests.audit.support import PASSWORD, admin_url, events, login, make_user

pytestmark = pytest.mark.django_db
T = SecurityEvent.EventType


def test_a_successful_login_and_logout_are_recorded():
    user = make_user("ann@example.com")
    client, response = login(user.email, HTTP_USER_AGENT="Firefox")
    assert response.status_code == 302
    client.post(reverse("admin:logout"))
    success, logout = events(user=user, event_type__in=[T.LOGIN_SUCCESS, T.LOGOUT])
    assert (success.event_type, logout.event_type) == (T.LOGIN_SUCCESS, T.LOGOUT)
    assert success.ip_address == "127.0.0.1" and success.user_agent == "Firefox"
    assert success.details["request_id"]


def test_a_failed_login_records_the_email_never_the_password():
    make_user("ann@example.com")
    _, response = login("ann@example.com", "Wr0ng-guess-password")
    assert response.status_code == 200  # the form again, with an error
    [event] = events(event_type=T.LOGIN_FAILURE)
    assert event.email_attempted == "ann@example.com"
    assert event.user_id is None
    assert "Wr0ng-guess-password" not in str(event.details)
    assert not SecurityEvent.objects.filter(details__icontains="Wr0ng").exists()
    assert not AccessAttempt.objects.filter(post_data__contains="Wr0ng").exists()


def test_a_password_change_is_recorded_but_a_hash_upgrade_is_not():
    user = make_user("ann@example.com")
    user.set_password("a-New-passphrase-42")
    user.save()
    assert [e.event_type for e in events(user=user)] == [T.PASSWORD_CHANGE]
    # Logging in with a password whose hash needs an upgrade rehashes and saves it.
    with override_settings(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.MD5PasswordHasher",
        ]
    ):
        login(user.email, "a-New-passphrase-42")
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_")
    assert [e.event_type for e in events(user=user)] == [T.PASSWORD_CHANGE, T.LOGIN_SUCCESS]


def test_own_password_change_page_records_a_password_change():
    user = make_user("ann@example.com")
    client, _ = login(user.email)
    response = client.post(
        reverse("admin:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "x-Brand-new-pass-7",
            "new_password2": "x-Brand-new-pass-7",
        },
    )
    assert response.status_code == 302
    assert T.PASSWORD_CHANGE in [e.event_type for e in events(user=user)]


def test_privilege_flags_and_permission_sets_are_recorded():
    user = make_user("ann@example.com", is_staff=False)
    user.is_staff = True
    user.is_superuser = True
    user.save()
    [flip] = events(user=user, event_type=T.PERMISSION_CHANGE)
    assert flip.details["changes"] == {
        "is_superuser": {"old": False, "new": True},
        "is_staff": {"old": False, "new": True},
    }
    perm = Permission.objects.get(codename="view_company")
    user.user_permissions.add(perm)
    last = events(user=user, event_type=T.PERMISSION_CHANGE)[-1]
    assert last.details["added"] == ["accounts.view_company"]
    group = Group.objects.create(name="Readers")
    perm.group_set.add(group)  # from the permission's side
    [group_event] = events(event_type=T.PERMISSION_CHANGE, details__resource_id=str(group.pk))
    assert group_event.details["added"] == ["accounts.view_company"]


# --- brute-force lockout (django-axes) ---------------------------------------------


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failures_lock_the_email_and_ip_pair():
    user = make_user("ann@example.com")
    for _ in range(2):
        _, response = login(user.email, "bad-password")
        assert response.status_code == 200
    _, response = login(user.email, "bad-password")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    [lockout] = events(event_type=T.LOCKOUT)
    assert lockout.email_attempted == "ann@example.com"
    assert lockout.ip_address == "127.0.0.1"
    assert lockout.details["failure_limit"] == 3
    # Even the right password is refused while locked, from this address...
    _, response = login(user.email)
    assert response.status_code == 429
    assert not events(user=user, event_type=T.LOGIN_SUCCESS)
    # ...but the account is not locked for everyone: another address logs in.
    _, response = login(user.email, REMOTE_ADDR="192.0.2.99")
    assert response.status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_case_and_spaces_do_not_split_the_count():
    make_user("ann@example.com")
    login("Ann@Example.com", "bad-password")
    _, response = login("  ann@example.com ", "bad-password")
    assert response.status_code == 429


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_lock_expires_after_the_cool_off_period():
    user = make_user("ann@example.com")
    login(user.email, "bad-password")
    login(user.email, "bad-password")
    # Age the attempt past the cool-off instead of waiting for it.
    AccessAttempt.objects.update(
        attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    )
    _, response = login(user.email)
    assert response.status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_an_administrator_unlocks_by_deleting_the_attempt_and_it_is_audited(admin_client):
    user = make_user("ann@example.com")
    login(user.email, "bad-password")
    login(user.email, "bad-password")
    attempt = AccessAttempt.objects.get()
    response = admin_client.post(admin_url(AccessAttempt, "delete", attempt.pk), {"post": "yes"})
    assert response.status_code == 302
    _, response = login(user.email)
    assert response.status_code == 302
    from tests.audit.support import activity

    [entry] = activity(resource_type="axes.accessattempt")
    assert entry.action == "delete"
    assert entry.details["changes"]["username"]["old"] == "ann@example.com"


def test_locked_out_client_gets_no_session():
    client = Client()
    with override_settings(AXES_FAILURE_LIMIT=1):
        make_user("ann@example.com")
        _, response = login("ann@example.com", "bad", client=client)
    assert response.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302
