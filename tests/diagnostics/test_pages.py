"""Every diagnostics page, seen as a superuser, as a role holding only pg_monitor and as
a role holding nothing: each renders (never a 500) and says what it cannot show."""

import html
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.diagnostics.support import MONITOR_ROLE, NOBODY_ROLE, PAGE_SLUGS, connect, running

pytestmark = pytest.mark.django_db

SLUGS = list(PAGE_SLUGS)
ALL_PERMS = ["view_diagnostics", "signal_backend", "reset_query_stats"]


def page_url(slug: str) -> str:
    return reverse("admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}")


def make_staff(django_user_model, email: str, codenames: list[str]):
    user = django_user_model.objects.create_user(
        email=email, password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="diagnostics", codename__in=codenames)
    )
    return user


@pytest.fixture
def diag_client(client, django_user_model):
    client.force_login(make_staff(django_user_model, "diag@example.com", ALL_PERMS))
    return client


# What each kind of role must be told, page by page (text that appears on the page).
EXPECTED = {
    ("overview", "nothing"): ["lacks pg_read_all_stats"],
    ("activity", "nothing"): ["hides the state and query", "GRANT pg_monitor TO"],
    ("connections", "nothing"): ["cannot see other roles'", "GRANT pg_read_all_stats TO"],
    ("queries", "nothing"): ["their text is hidden", "GRANT pg_read_all_stats TO"],
    ("settings", "nothing"): ["Hidden from role", "shared_preload_libraries"],
    ("privileges", "nothing"): [
        f'GRANT pg_monitor TO "{NOBODY_ROLE}";',
        f'GRANT pg_signal_backend TO "{NOBODY_ROLE}";',
        "pg_stat_statements_reset(",
    ],
    ("privileges", "pg_monitor"): [f'GRANT pg_signal_backend TO "{MONITOR_ROLE}";'],
    ("privileges", "superuser"): ["is a superuser"],
    ("maintenance", "nothing"): ["cannot be read by role", "GRANT SELECT ON ALL SEQUENCES"],
    ("maintenance", "pg_monitor"): ["cannot be read by role"],
    ("indexes", "superuser"): ["Schema drift"],
    ("indexes", "pg_monitor"): [
        f"Role <code>{MONITOR_ROLE}</code> cannot create the scratch schemas"
    ],
    ("indexes", "nothing"): [f"Role <code>{NOBODY_ROLE}</code> cannot create the scratch schemas"],
    ("replication", "superuser"): ["None: this server has no standbys"],
    ("replication", "pg_monitor"): ["None: this server has no standbys"],
    ("replication", "nothing"): ["None: this server has no standbys"],
}


@pytest.mark.parametrize("slug", SLUGS)
def test_each_page_renders_for_each_role_with_its_degraded_messages(diag_client, diag_target, slug):
    response = diag_client.get(page_url(slug), {"db": diag_target.alias})
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert f"seen as role <code>{diag_target.role}</code>" in text
    assert "cannot be inspected" not in text
    for expected in EXPECTED.get((slug, diag_target.kind), []):
        assert expected in text, f"{slug} as {diag_target.kind}: missing {expected!r}"
    if diag_target.kind == "nothing":
        assert "limited view" in text
    else:
        assert "limited view" not in text
    # A panel error is a translated message, never a traceback.
    assert "Traceback" not in text


def test_pages_link_to_each_other_and_keep_the_database(diag_client, diag_target):
    text = diag_client.get(page_url("overview"), {"db": diag_target.alias}).content.decode()
    for slug in SLUGS[1:]:
        assert f'href="{page_url(slug)}?db={diag_target.alias}"' in text


def test_an_unknown_database_alias_is_a_404(diag_client):
    assert diag_client.get(page_url("activity"), {"db": "nope"}).status_code == 404


def test_a_database_that_refuses_the_connection_is_a_message_not_an_error(diag_client, add_alias):
    add_alias("broken", PASSWORD="wrong-password")
    for slug in SLUGS:
        response = diag_client.get(page_url(slug), {"db": "broken"})
        assert response.status_code == 200
        assert "This database cannot be inspected: Cannot reach the database" in (
            response.content.decode()
        )


def test_bad_filter_values_are_ignored_with_a_message(diag_client):
    response = diag_client.get(
        page_url("activity"), {"state": "x" * 500, "min_seconds": "soon", "order": "'; drop"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Unknown state" in text
    assert "enter a number of seconds" in text
    response = diag_client.get(page_url("queries"), {"order": "pg_sleep(10)"})
    assert response.status_code == 200


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(page_url("overview"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_staff_without_the_view_permission_are_refused(client, django_user_model):
    client.force_login(make_staff(django_user_model, "plain@example.com", []))
    for slug in SLUGS:
        assert client.get(page_url(slug)).status_code == 403


def test_viewers_see_no_action_buttons_and_cannot_post_actions(client, django_user_model):
    client.force_login(make_staff(django_user_model, "viewer@example.com", ["view_diagnostics"]))
    text = client.get(page_url("activity")).content.decode()
    assert "Terminate…" not in text
    assert "Terminate idle connections" not in text
    assert "Reset query statistics" not in client.get(page_url("queries")).content.decode()
    post = {"pid": "1", "backend_start": "2026-01-01T00:00:00+00:00", "kind": "cancel"}
    assert client.post(reverse("admin:diagnostics_signal"), post).status_code == 403
    terminate_idle = reverse("admin:diagnostics_terminate_idle")
    assert client.post(terminate_idle, {"minutes": "5"}).status_code == 403
    assert client.post(reverse("admin:diagnostics_reset_queries"), {}).status_code == 403


def test_action_urls_accept_only_post(diag_client):
    for name in ("diagnostics_signal", "diagnostics_terminate_idle", "diagnostics_reset_queries"):
        assert diag_client.get(reverse(f"admin:{name}")).status_code == 405


def test_overview_shows_the_numbers_an_admin_looks_for(diag_client):
    text = diag_client.get(page_url("overview")).content.decode()
    for label in (
        "Database size",
        "Connections",
        "Cache hit ratio",
        "Transactions per second",
        "Deadlocks",
        "Needs attention",
        "up ",
    ):
        assert label in text
    # A second view has two samples to compute a rate from (at least a second apart).
    time.sleep(1.1)
    text = diag_client.get(page_url("overview")).content.decode()
    assert "over the last" in text


def test_activity_marks_this_page_and_the_portals_own_sessions(diag_client):
    with connect(application_name="portal") as portal_session:
        portal_session.execute("SELECT 1")
        text = diag_client.get(page_url("activity")).content.decode()
        row = text[text.index(f'id="pid-{portal_session.info.backend_pid}"') :]
        assert '<span class="diag-badge">portal</span>' in row[: row.index("</tr>")]
    assert '<span class="diag-badge">this page</span>' in text


def test_passwords_in_statement_texts_are_never_shown(diag_client):
    statement = "SELECT pg_sleep(60) -- ALTER ROLE app PASSWORD 'hunter2-secret'"
    with running(statement) as sleeper:
        text = html.unescape(diag_client.get(page_url("activity")).content.decode())
        assert f'id="pid-{sleeper.pid}"' in text
        assert "hunter2-secret" not in text
        assert "SELECT pg_sleep(60) /* ******** */" in text
