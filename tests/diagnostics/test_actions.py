"""Terminating idle connections: listed, confirmed, re-checked and audited one by one."""

import html
import time

import psycopg
import pytest
from django.urls import reverse

from audit.models import ActivityLog
from tests.db import roles
from tests.diagnostics.support import connect, scalar, wait_for

pytestmark = pytest.mark.django_db

URL = "admin:diagnostics_terminate_idle"


def idle_connection(name: str) -> psycopg.Connection:
    # Another role's session, as the gateway's would be (the portal's pg_signal_backend
    # never reaches a superuser's): the migrator's.
    user, password = roles.cluster().credentials(roles.MIGRATOR)
    conn = connect(user=user, password=password, application_name=name)
    conn.execute("SELECT 1")
    return conn


def test_idle_connections_are_listed_then_terminated_after_confirmation(admin_client):
    first, second = idle_connection("diag-idle-a"), idle_connection("diag-idle-b")
    busy = idle_connection("diag-idle-c")
    try:
        pids = {c.info.backend_pid for c in (first, second, busy)}
        terminated = {first.info.backend_pid, second.info.backend_pid}
        busy_pid = busy.info.backend_pid
        time.sleep(0.05)  # state_change strictly before "now"
        listing = admin_client.post(reverse(URL), {"minutes": "0"})
        assert listing.status_code == 200
        text = html.unescape(listing.content.decode())
        for pid in pids:
            assert f'value="{pid}|' in text
        # Nothing is terminated before the confirmation.
        for conn in (first, second, busy):
            conn.execute("SELECT 1")
        chosen = [
            line.split('value="')[1].split('"')[0]
            for line in text.splitlines()
            if 'name="session"' in line and any(f'value="{pid}|' in line for pid in pids)
        ]
        assert len(chosen) == 3
        # The third opens a transaction between the listing and the confirmation.
        busy.execute("BEGIN")
        busy.execute("SELECT 1")
        with connect() as watcher:
            wait_for(
                lambda: scalar(
                    watcher,
                    "SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = %s",
                    (busy_pid,),
                ),
                what="the busy session's transaction",
            )
        done = admin_client.post(
            reverse(URL),
            {"minutes": "1", "confirm": "yes", "session": chosen},
            follow=True,
        )
        # Re-checked at confirmation: none has been idle for a whole minute yet.
        assert "Terminated 0 idle sessions. 3 had already ended or become busy" in (
            html.unescape(done.content.decode())
        )
        done = admin_client.post(
            reverse(URL),
            {"minutes": "0", "confirm": "yes", "session": chosen},
            follow=True,
        )
        assert "Terminated 2 idle sessions. 1 had already ended or become busy" in (
            html.unescape(done.content.decode())
        )
        for conn in (first, second):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        busy.execute("SELECT 1")  # still connected, its transaction intact
        entries = ActivityLog.objects.filter(
            action="diagnostics.terminate_backend", details__result="signalled"
        )
        assert {int(e.resource_id) for e in entries} == terminated
        assert (
            ActivityLog.objects.filter(
                resource_id=str(busy_pid), details__result="not_found"
            ).count()
            == 2
        )
        assert all(e.details["idle_minutes"] == 0 for e in entries)
    finally:
        for conn in (first, second, busy):
            conn.close()


def test_the_portals_own_connections_are_left_alone_unless_asked(admin_client):
    portal = idle_connection("portal")  # the application_name the portal's sessions use
    other = idle_connection("diag-idle-other")
    try:
        time.sleep(0.05)
        text = admin_client.post(reverse(URL), {"minutes": "0"}).content.decode()
        assert f'value="{other.info.backend_pid}|' in text
        assert f'value="{portal.info.backend_pid}|' not in text
        text = admin_client.post(
            reverse(URL), {"minutes": "0", "include_portal": "1"}
        ).content.decode()
        assert f'value="{portal.info.backend_pid}|' in text
    finally:
        portal.close()
        other.close()


@pytest.mark.parametrize("minutes", ["-1", "ten", "99999999", ""])
def test_a_bad_idle_duration_is_a_message(admin_client, minutes):
    response = admin_client.post(reverse(URL), {"minutes": minutes}, follow=True)
    assert response.status_code == 200
    assert "enter whole minutes" in response.content.decode()


def test_a_forged_session_list_terminates_nothing(admin_client):
    before = ActivityLog.objects.count()  # migrate's role sync may have written some
    response = admin_client.post(
        reverse(URL),
        {"minutes": "0", "confirm": "yes", "session": ["abc|def", "12|not-a-date"]},
        follow=True,
    )
    assert "No session was selected" in response.content.decode()
    assert ActivityLog.objects.count() == before


@pytest.mark.parametrize("seconds", ["0", "-1", "ten", "", "604801", "1.5"])
def test_a_bad_running_duration_is_a_message(admin_client, seconds):
    response = admin_client.post(
        reverse("admin:diagnostics_signal_long"),
        {"kind": "cancel", "seconds": seconds},
        follow=True,
    )
    assert response.status_code == 200
    assert "enter whole seconds from 1 to 604800" in response.content.decode()
