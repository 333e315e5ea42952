"""Login throttling as an attacker meets it: many emails from one address, one email
from many addresses, a spread-out attack, and the portal behind one or two proxies.

Limits are lowered with override_settings so each attack takes a handful of requests;
the counts and events are read back from the database.
"""

import logging

import pytest
from django.test import override_settings

from audit.models import SecurityEvent
from tests.audit.support import PASSWORD, events, login, make_user

pytestmark = pytest.mark.django_db
LOCKOUT = SecurityEvent.EventType.LOCKOUT


@override_settings(AXES_FAILURE_LIMIT=5, LOGIN_IP_FAILURE_LIMIT=6)
def test_one_address_cannot_try_many_emails():
    victims = [make_user(f"user{i}@example.com") for i in range(4)]
    # 3 emails x 2 passwords: no pair reaches 5, the address reaches 6.
    for victim in victims[:3]:
        for attempt in range(2):
            _, response = login(victim.email, f"guess-{attempt}", REMOTE_ADDR="198.51.100.9")
            assert response.status_code == 200
    # Even the right password of a fresh email is now refused from that address ...
    _, response = login(victims[3].email, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    assert not events(event_type=SecurityEvent.EventType.LOGIN_SUCCESS)
    # ... not from another one.
    _, response = login(victims[3].email, REMOTE_ADDR="198.51.100.10")
    assert response.status_code == 302


@override_settings(AXES_FAILURE_LIMIT=5, LOGIN_ACCOUNT_FAILURE_LIMIT=4)
def test_many_addresses_cannot_try_one_email():
    user = make_user("target@example.com")
    for i in range(4):
        _, response = login(user.email, "guess", REMOTE_ADDR=f"203.0.113.{i + 1}")
        assert response.status_code == 200
    _, response = login(user.email, REMOTE_ADDR="203.0.113.99")
    assert response.status_code == 429


@override_settings(AXES_FAILURE_LIMIT=5, LOGIN_GLOBAL_FAILURES_PER_MINUTE=5)
def test_a_spread_out_attack_meets_the_global_ceiling_with_one_event():
    for i in range(5):
        login(f"nobody{i}@example.com", "guess", REMOTE_ADDR=f"192.0.2.{i + 1}")
    user = make_user("innocent@example.com")
    for i in range(4):
        _, response = login(user.email, REMOTE_ADDR=f"192.0.2.{100 + i}")
        assert response.status_code == 429
    [event] = events(event_type=LOCKOUT)
    assert event.details["scope"] == "global"


@override_settings(AXES_FAILURE_LIMIT=3)
def test_one_lockout_is_one_event_however_many_requests_follow():
    user = make_user("ann@example.com")
    for _ in range(10):
        login(user.email, "bad-password")
    _, response = login(user.email)
    assert response.status_code == 429
    assert len(events(event_type=LOCKOUT)) == 1


@override_settings(AXES_FAILURE_LIMIT=3, TRUSTED_PROXY_COUNT=2)
def test_behind_a_load_balancer_each_client_keeps_its_own_address():
    """External HTTPS LB -> Cloud Run: X-Forwarded-For is "client, lb-seen-by-cloud-run"
    (plus whatever the client sent in front); the balancer's address is REMOTE_ADDR."""
    user = make_user("shared@example.com")
    balancer = {"REMOTE_ADDR": "35.191.0.1"}
    attacker = {"HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.66, 34.120.0.5", **balancer}
    for _ in range(3):
        login(user.email, "guess", None, **attacker)
    # The real user, through the same balancer, is not locked out ...
    owner = {"HTTP_X_FORWARDED_FOR": "203.0.113.5, 34.120.0.5", **balancer}
    _, response = login(user.email, PASSWORD, None, **owner)
    assert response.status_code == 302
    # ... and the audit trail names the real addresses, not the balancer's.
    [lockout] = events(event_type=LOCKOUT)
    assert lockout.ip_address == "198.51.100.66"
    [success] = events(event_type=SecurityEvent.EventType.LOGIN_SUCCESS)
    assert success.ip_address == "203.0.113.5"


def test_a_rejected_lookup_is_one_warning_without_traceback(admin_client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.security"):
        response = admin_client.get("/admin/accounts/user/?password__startswith=pbkdf2")
    assert response.status_code == 400
    records = [r for r in caplog.records if r.name.startswith("django.security")]
    assert records and all(r.levelno == logging.WARNING and not r.exc_info for r in records)


def test_the_right_password_still_works_below_every_limit():
    user = make_user("fine@example.com")
    _, response = login(user.email, PASSWORD)
    assert response.status_code == 302
