"""Client IP behind trusted proxies, and the request id, as the audit trail records them."""

import re
from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from accounts.models import Company
from portal.request_context import client_ip, client_trace_id, request_id
from tests.audit.support import activity, admin_url

rf = RequestFactory()


def ip_of(xff: str | None, remote: str = "169.254.1.1", trusted: int = 1) -> str | None:
    headers: dict[str, Any] = {"REMOTE_ADDR": remote}
    if xff is not None:
        headers["HTTP_X_FORWARDED_FOR"] = xff
    with override_settings(TRUSTED_PROXY_COUNT=trusted):
        return client_ip(rf.get("/", **headers))


def test_behind_cloud_run_the_client_is_the_rightmost_entry():
    assert ip_of("203.0.113.7") == "203.0.113.7"


def test_a_spoofed_leftmost_entry_does_not_win():
    # The client sent "X-Forwarded-For: 6.6.6.6"; Cloud Run appended what it saw.
    assert ip_of("6.6.6.6, 203.0.113.7") == "203.0.113.7"
    assert ip_of("6.6.6.6,10.0.0.1 , 203.0.113.7") == "203.0.113.7"


def test_two_trusted_proxies_take_the_second_entry_from_the_right():
    assert ip_of("6.6.6.6, 203.0.113.7, 198.51.100.2", trusted=2) == "203.0.113.7"


def test_with_no_trusted_proxy_the_header_is_ignored():
    assert ip_of("6.6.6.6", remote="192.0.2.10", trusted=0) == "192.0.2.10"


def test_fewer_hops_than_trusted_proxies_or_garbage_fall_back_to_the_peer():
    assert ip_of("203.0.113.7", remote="192.0.2.10", trusted=2) == "192.0.2.10"
    assert ip_of("6.6.6.6, not-an-ip", remote="192.0.2.10") == "192.0.2.10"
    assert ip_of("", remote="192.0.2.10") == "192.0.2.10"
    assert ip_of(None, remote="garbage") is None


def test_ipv6_and_ports_are_understood():
    assert ip_of("6.6.6.6, 2001:db8::1") == "2001:db8::1"
    assert ip_of("[2001:db8::2]:443") == "2001:db8::2"
    assert ip_of("203.0.113.9:5123") == "203.0.113.9"


def test_the_request_id_is_ours_and_the_clients_trace_is_kept_apart():
    """A client-chosen traceparent must not become the audit rows' request id."""
    chosen = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = rf.get("/", HTTP_TRACEPARENT=f"00-{chosen}-00f067aa0ba902b7-01")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id(request))
    assert request_id(request) != chosen
    assert client_trace_id(request) == chosen
    cloud = rf.get("/", HTTP_X_CLOUD_TRACE_CONTEXT="105445aa7843bc8bf206b12000100000/1;o=1")
    assert client_trace_id(cloud) == "105445aa7843bc8bf206b12000100000"
    assert request_id(cloud) != "105445aa7843bc8bf206b12000100000"
    assert request_id(rf.get("/")) != request_id(rf.get("/"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_CLOUD_TRACE_CONTEXT": "'; DROP TABLE x; --/1"},
        {"HTTP_TRACEPARENT": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"HTTP_TRACEPARENT": "garbage"},
    ],
)
def test_request_id_is_generated_when_absent_or_malformed(headers):
    value = request_id(rf.get("/", **headers))
    assert re.fullmatch(r"[0-9a-f]{32}", value)
    assert value.strip("0")


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_an_admin_change_records_client_ip_user_agent_and_request_id(admin_client):
    company = Company.objects.create(name="Acme")
    response = admin_client.post(
        admin_url(Company, "change", company.pk),
        {
            "name": "Acme Corp",
            "domain": "",
            "subscription_plan": "free",
            "max_users": 10,
            "is_active": "on",
        },
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7",
        HTTP_USER_AGENT="pytest-browser/1.0",
        HTTP_X_CLOUD_TRACE_CONTEXT="105445aa7843bc8bf206b12000100000/1;o=1",
    )
    assert response.status_code == 302
    [entry] = activity(resource_type="accounts.company", resource_id=str(company.pk))
    assert response["X-Request-ID"] == entry.request_id
    assert re.fullmatch(r"[0-9a-f]{32}", entry.request_id)
    assert entry.client_trace_id == "105445aa7843bc8bf206b12000100000"
    assert entry.ip_address == "203.0.113.7"
    assert entry.user_agent == "pytest-browser/1.0"
