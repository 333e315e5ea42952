"""The admin index is a dashboard; models are grouped the way people think."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import CodexSession, ExecutionHistory, ExecutionHour, McpCache, SandboxExecution
from tests.db import roles

pytestmark = pytest.mark.django_db


def _session(status: str, *, age: datetime.timedelta = datetime.timedelta(0)) -> CodexSession:
    session = CodexSession.objects.create(
        session_id=__import__("uuid").uuid4(), user_id="u1", model="gpt-5", status=status
    )
    CodexSession.objects.filter(pk=session.pk).update(created_at=timezone.now() - age)
    return session


@pytest.fixture
def activity():
    now = timezone.now()
    running = _session("running")
    _session("failed")
    _session("failed", age=datetime.timedelta(days=3))
    _session("completed", age=datetime.timedelta(days=30))  # outside every window
    ExecutionHistory.objects.bulk_create(
        [
            ExecutionHistory(
                session=running,
                prompt="fix the flaky test",
                tokens_used=1000,
                execution_time_ms=250_000,
            ),
            ExecutionHistory(
                session=running, prompt="explain the diff", tokens_used=500, execution_time_ms=1_000
            ),
        ]
    )
    old = ExecutionHistory.objects.create(session=running, prompt="old", tokens_used=99_999)
    ExecutionHistory.objects.filter(pk=old.pk).update(created_at=now - datetime.timedelta(days=2))
    SandboxExecution.objects.create(
        session=running, sql_query="select 1/0", error="division by zero"
    )
    SandboxExecution.objects.create(session=running, sql_query="select 1", result=[[1]])
    McpCache.objects.create(tool_name="web.fetch", expires_at=now - datetime.timedelta(hours=1))
    McpCache.objects.create(tool_name="web.fetch", expires_at=now - datetime.timedelta(hours=2))
    McpCache.objects.create(tool_name="web.fetch", expires_at=now + datetime.timedelta(hours=1))
    return running


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_dashboard_shows_todays_sessions_by_status_with_links(admin_client, activity):
    page = _text(admin_client.get("/admin/"))
    assert "Sessions today" in page
    assert re.search(r"Sessions today</span> <span class=\"portal-card-value\">2<", page)
    assert "3 in the last 7 days" in page
    assert "?status=failed&amp;created_at__gte=" in page
    # Known statuses by their label (the stored value in the title), others as stored.
    assert 'title="failed">Failed</span>' in page and ">running</span>" in page
    assert ">completed</span>" not in page  # 30 days old


def test_dashboard_shows_executions_tokens_and_the_slowest(admin_client, activity):
    page = _text(admin_client.get("/admin/"))
    assert re.search(
        r"Executions, last 24 h</span> <span class=\"portal-card-value\"[^>]*>2<", page
    )
    assert "1,500 tokens" in page  # the 2-day-old execution is not counted
    assert "fix the flaky test" in page
    assert "4.2 min" in page
    assert "/admin/core/executionhistory/?created_at__gte=" in page


def test_dashboard_shows_failed_sandbox_runs_and_expired_cache(admin_client, activity):
    page = _text(admin_client.get("/admin/"))
    assert "division by zero" in page
    assert "/admin/core/sandboxexecution/?outcome=failed" in page
    assert re.search(r"Expired cache entries</span> <span class=\"portal-card-value\">2<", page)
    assert "/admin/core/mcpcache/purge-expired/" in page


def test_dashboard_groups_models_the_way_people_think(admin_client):
    page = _text(admin_client.get("/admin/"))
    captions = re.findall(r'class="section"[^>]*>([^<]+)</a>', page)
    assert captions[:5] == ["Agent sessions", "Accounts", "Projects", "Analytics", "Audit"]
    agent = page[page.index(">Agent sessions<") : page.index(">Accounts<")]
    for name in ("Agent sessions", "Execution history", "Sandbox runs", "Tool cache"):
        assert name in agent
    projects = page[page.index(">Projects<") : page.index(">Analytics<")]
    assert "Automations" in projects


def test_dashboard_links_to_the_diagnostics_pages(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Database diagnostics" in page
    assert 'href="/admin/diagnostics/"' in page


def test_staff_without_permissions_sees_no_figures(client, django_user_model, activity):
    user = django_user_model.objects.create_user(
        email="staff@example.com", password="x-Pa55word-long", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_company"))
    client.force_login(user)
    page = _text(client.get("/admin/"))
    assert "Sessions today" not in page
    assert "fix the flaky test" not in page
    assert "Companies" in page


def test_app_index_lists_the_grouped_models(admin_client):
    response = admin_client.get("/admin/core/")
    assert response.status_code == 200
    assert b"Agent sessions" in response.content and b"Automations" in response.content


def test_24_hour_totals_are_exact_whether_hours_are_stored_or_not():
    from core import selectors

    session = _session("running")
    now = timezone.now()
    rows = []
    for minutes in range(0, 26 * 60, 37):  # every 37 minutes over 26 hours
        rows.append(
            ExecutionHistory(
                session=session, prompt="p", tokens_used=minutes + 1, execution_time_ms=2 * minutes
            )
        )
    made = ExecutionHistory.objects.bulk_create(rows)
    for minutes, execution in zip(range(0, 26 * 60, 37), made, strict=True):
        ExecutionHistory.objects.filter(pk=execution.pk).update(
            created_at=now - datetime.timedelta(minutes=minutes)
        )
    window = selectors.Window.starting(now)
    direct = selectors._window_totals(window.day_ago, None)
    assert direct.executions == len(range(0, 24 * 60 + 1, 37))
    assert selectors.execution_window(window) == direct  # cold: hours computed and stored
    # Stored: every whole hour inside the window that ended over 5 minutes ago.
    first = selectors._hour_floor(window.day_ago) + datetime.timedelta(hours=1)
    last = selectors._hour_floor(now - selectors.SETTLED_AFTER)
    assert ExecutionHour.objects.count() == (last - first) // datetime.timedelta(hours=1)

    with CaptureQueriesContext(connection) as queries:
        assert selectors.execution_window(window) == direct  # warm: read back
    scans = [q["sql"] for q in queries if "execution_history" in q["sql"]]
    assert len(scans) == 2, scans  # only the partial hour at each end, read live


def test_stored_hours_serve_every_later_view_and_only_whole_past_hours_are_stored():
    from core import selectors

    session = _session("running")
    now = timezone.now()
    made = ExecutionHistory.objects.create(session=session, prompt="p", tokens_used=7)
    ExecutionHistory.objects.filter(pk=made.pk).update(created_at=now - datetime.timedelta(hours=3))
    window = selectors.Window.starting(now)
    assert selectors.execution_window(window).tokens == 7

    stored = ExecutionHour.objects.filter(tokens=7).get()
    assert stored.hour == (now - datetime.timedelta(hours=3)).astimezone(datetime.UTC).replace(
        minute=0, second=0, microsecond=0
    )
    assert not ExecutionHour.objects.filter(hour__gt=now - datetime.timedelta(minutes=65)).exists()


@pytest.fixture
def hours_refused():
    """A database refusing the write of the stored hours."""
    with roles.inserts_refused("core", "execution_hours", "read-only"):
        yield


@pytest.mark.django_db(transaction=True)
def test_figures_are_still_shown_when_the_hours_cannot_be_stored(hours_refused):
    from core import selectors

    session = _session("running")
    ExecutionHistory.objects.create(session=session, prompt="p", tokens_used=5)
    ExecutionHistory.objects.filter(session=session).update(
        created_at=timezone.now() - datetime.timedelta(hours=2)
    )
    window = selectors.Window.starting(timezone.now())

    assert selectors.execution_window(window).tokens == 5
    assert not ExecutionHour.objects.exists()


def _store_the_whole_week() -> list[datetime.datetime]:
    """Every hour of the charts' week stored in the rollup (hours as hourly_totals
    counts them), each with its own figures."""
    from core import selectors

    settled = selectors._hour_floor(timezone.now() - selectors.SETTLED_AFTER)
    hours = [settled - datetime.timedelta(hours=7 * 24 - i) for i in range(7 * 24)]
    ExecutionHour.objects.bulk_create(
        [ExecutionHour(hour=h, executions=i, tokens=10 * i, time_ms=i) for i, h in enumerate(hours)]
    )
    return hours


def _charts(response) -> str:
    page = response.content.decode()
    start = page.index('<div class="diag-charts">')
    return page[start : page.index("</section>", start)]


def test_the_week_of_charts_is_drawn_once_when_every_hour_is_stored(admin_client):
    from django.core.cache import cache

    _store_the_whole_week()

    def rollup_reads(queries) -> int:
        return sum("execution_hours" in q["sql"] for q in queries)

    with CaptureQueriesContext(connection) as drawing:
        first = admin_client.get("/admin/")
    with CaptureQueriesContext(connection) as kept:
        again = admin_client.get("/admin/")
    # The second view does not read the week from the rollup: only the 24-hour card does.
    assert rollup_reads(kept) == rollup_reads(drawing) - 1
    assert _charts(again) == _charts(first)
    # What was kept is exactly what drawing them again gives.
    cache.clear()
    assert _charts(admin_client.get("/admin/")) == _charts(first)


def test_the_kept_charts_are_per_language(admin_client):
    _store_the_whole_week()
    english = _charts(admin_client.get("/admin/"))
    portuguese = _charts(admin_client.get("/admin/", headers={"accept-language": "pt-br"}))
    assert "Executions per hour" in english
    assert "Executions per hour" not in portuguese
    assert _charts(admin_client.get("/admin/")) == english


def test_charts_with_hours_still_missing_are_not_kept(admin_client):
    from django.core.cache import cache

    session = _session("running")
    ExecutionHistory.objects.create(session=session, prompt="p", tokens_used=5)
    assert admin_client.get("/admin/").context["charts"]["missing_hours"] > 0
    assert not [k for k in cache._cache if "dashboard-charts" in k]  # type: ignore[attr-defined]


def test_failed_sessions_per_hour_are_counted_in_whole_utc_hours():
    """The chart's failures per hour against an independent count: Python's own floor
    of each session's time to its UTC hour, hour boundaries and their neighbours
    included, in a zone whose offset is not whole hours."""
    import collections
    import random
    import zoneinfo

    from core import selectors

    base = timezone.now().astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    start = base - datetime.timedelta(hours=30)
    tiny = datetime.timedelta(microseconds=1)
    moments = []
    for h in range(0, 30, 3):
        edge = start + datetime.timedelta(hours=h)
        moments += [edge, edge - tiny, edge + tiny]
    rng = random.Random(7)
    moments += [start + datetime.timedelta(seconds=rng.uniform(0, 30 * 3600)) for _ in range(30)]
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")  # +05:30
    for i, moment in enumerate(moments):
        status = ("failed", "timeout", "completed")[i % 3]
        session = _session(status)
        CodexSession.objects.filter(pk=session.pk).update(created_at=moment.astimezone(kolkata))
    expected = collections.Counter(
        m.replace(minute=0, second=0, microsecond=0)
        for i, m in enumerate(moments)
        if i % 3 != 2 and start <= m < base
    )
    assert selectors.failed_sessions_by_hour(start, base) == dict(expected)


def test_the_latest_failed_sessions_are_the_orms_newest_failed_or_timed_out():
    """The dashboard's list (plain SQL) against the ORM's own answer: the newest eight
    failed or timed-out sessions, whatever the mix of statuses and ages."""
    from core import selectors

    for i in range(25):
        status = ("failed", "timeout", "completed", "running")[i % 4]
        session = _session(status, age=datetime.timedelta(minutes=7 * i))
        CodexSession.objects.filter(pk=session.pk).update(metadata={"error": f"e{i}", "n": i})
    expected = list(
        CodexSession.objects.filter(status__in=["failed", "timeout"]).order_by("-created_at")[:8]
    )
    found = selectors.latest_failed_sessions()
    assert [s.pk for s in found] == [s.pk for s in expected]
    assert [s.metadata for s in found] == [s.metadata for s in expected]
    assert [(s.status, s.model, s.created_at) for s in found] == [
        (s.status, s.model, s.created_at) for s in expected
    ]
