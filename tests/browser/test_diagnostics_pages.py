"""The diagnostics pages in a real browser, light and dark, with real conditions on them."""

import datetime as dt
import random

import pytest
from django.utils import timezone
from psycopg import sql

from diagnostics.models import StatsSnapshot, TableSizeSnapshot
from tests.db import roles
from tests.diagnostics.support import (
    PAGE_SLUGS,
    committed,
    connect,
    running,
    scalar,
    unique,
    wait_for,
)

SLUGS = list(PAGE_SLUGS)


def url_of(live_server, slug: str) -> str:
    suffix = "" if slug == "overview" else f"{slug}/"
    return f"{live_server.url}/admin/diagnostics/{suffix}"


@pytest.fixture
def history(transactional_db):
    """Two days of hourly snapshots, as snapshot_stats would have stored them."""
    with connect() as conn:
        database = conn.info.dbname
    rng = random.Random(4)
    now = timezone.now()
    size = 40_000_000
    for hour in range(48, 0, -1):
        size += rng.randint(50_000, 400_000)
        active = rng.randint(1, 8)
        snap = StatsSnapshot.objects.create(
            alias="default",
            database=database,
            captured_at=now - dt.timedelta(hours=hour),
            database_size_bytes=size,
            connections_total=active + 12,
            connections_active=active,
            connections_idle=10,
            connections_idle_in_transaction=rng.randint(0, 2),
            max_connections=200,
        )
        for i, name in enumerate(("execution_history", "codex_sessions", "mcp_cache")):
            TableSizeSnapshot.objects.create(
                snapshot=snap,
                schema_name="core",
                table_name=name,
                total_bytes=size // (i + 2),
                table_bytes=size // (i + 3),
                index_bytes=size // 10,
                toast_bytes=0,
                row_estimate=1000 * (48 - hour),
            )


@pytest.fixture
def conditions(transactional_db):
    """A lock queue, an unused index and a sequence near its limit, left for the pages."""
    table = unique("diag_browser")
    t = sql.Identifier(table)
    seq = sql.Identifier(f"{table}_seq")
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int, v int)").format(t),
            sql.SQL("INSERT INTO {} SELECT g, mod(g, 97) FROM generate_series(1, 5000) g").format(
                t
            ),
            sql.SQL("CREATE INDEX ON {} (v)").format(t),
            sql.SQL("CREATE SEQUENCE {} MAXVALUE 1000").format(seq),
            sql.SQL("SELECT setval({}, 930)").format(sql.Literal(f"{table}_seq")),
        ],
        [
            sql.SQL("DROP TABLE IF EXISTS {}").format(t),
            sql.SQL("DROP SEQUENCE IF EXISTS {}").format(seq),
        ],
    ):
        holder = connect(autocommit=False, application_name="batch-import")
        holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(t))
        try:
            select = sql.SQL("SELECT count(*) FROM {}").format(t)
            with running(select, application_name="gateway") as waiter:
                with connect() as watcher:
                    wait_for(
                        lambda: scalar(
                            watcher, "SELECT cardinality(pg_blocking_pids(%s)) > 0", (waiter.pid,)
                        )
                    )
                yield table
        finally:
            holder.rollback()
            holder.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_diagnostics_page_in_light_and_dark(
    admin_page, live_server, screenshot, history, conditions, scheme
):
    page = admin_page
    page.emulate_media(color_scheme=scheme)
    for slug in SLUGS:
        page.goto(url_of(live_server, slug))
        assert page.locator("#site-name").inner_text() == "Agent Gateway Portal"
        assert page.locator(".diag-tabs li.selected").inner_text().strip().lower() == slug
        assert page.locator(".errornote").count() == 0, f"{slug}: {page.content()[:500]}"
        if slug == "indexes":
            # The suite runs as the application role, which may not create the scratch
            # schemas (no CREATE on the database): a note, not an error, says so (the
            # comparison runs in the migrate job, as the migrator).
            drift = page.locator("#schema-drift")
            assert drift.locator("table.diag-drift").count() == 0
            assert "cannot create the scratch schemas" in drift.inner_text()
        screenshot(f"{scheme}-{slug}")
    # The page of one statement (reached from Queries): history, plan, index hints. A
    # statement of the test's own, found with the page's search: whatever else earlier
    # tests left in pg_stat_statements may be on a table that is gone or locked, and
    # its plan then (rightly) shows an error.
    with connect() as conn:
        for _ in range(3):
            conn.execute("SELECT count(*) AS browser_statement_probe FROM core.codex_sessions")
    page.goto(url_of(live_server, "queries") + "?q=browser_statement_probe")
    page.locator("a.diag-statement-link").first.click()
    page.wait_for_url(f"{live_server.url}/admin/diagnostics/queries/statement/**")
    assert page.locator(".diag-tabs li.selected").inner_text().strip().lower() == "queries"
    assert page.locator("h2", has_text="Plan (EXPLAIN, generic)").count() == 1
    assert page.locator(".errornote").count() == 0, page.content()[:500]
    screenshot(f"{scheme}-statement")
    # The charts' palette follows the scheme, like the admin's own variables.
    colour = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--diag-s0').trim()"
    )
    assert colour == ("#6cb6e8" if scheme == "dark" else "#2f7fb5")


def test_cancel_a_long_query_from_the_activity_page(admin_page, live_server, screenshot):
    page = admin_page
    # Another role's session (pg_signal_backend never reaches a superuser's): the migrator's.
    user, password = roles.cluster().credentials(roles.MIGRATOR)
    with running(
        "SELECT pg_sleep(60)", user=user, password=password, application_name="stuck-report"
    ) as sleeper:
        page.goto(url_of(live_server, "activity"))
        row = page.locator(f"#pid-{sleeper.pid}")
        assert "pg_sleep(60)" in row.inner_text()
        screenshot("activity")
        row.get_by_role("button", name="Cancel…").click()
        page.wait_for_url(f"{live_server.url}/admin/diagnostics/activity/signal/")
        assert f"Cancel the query of session {sleeper.pid}?" in page.locator("h1").inner_text()
        screenshot("confirm")
        page.get_by_role("button", name=f"Yes, cancel the query of session {sleeper.pid}").click()
        page.wait_for_url(f"{live_server.url}/admin/diagnostics/activity/?db=default")
        assert (
            f"Cancelled the query of session {sleeper.pid}"
            in page.locator(".messagelist").inner_text()
        )
        screenshot("cancelled")
        sleeper.thread.join(timeout=10)
        assert "canceling statement due to user request" in str(sleeper.error[0])
