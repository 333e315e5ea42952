"""What pghero has and these pages now have too: a page per statement (history from the
snapshots, generic plan, EXPLAIN ANALYZE behind its own permission), index suggestions
from the statement's parse tree, cancel/terminate of every query running longer than N,
and connections broken down by database, role, application, client and SSL."""

import datetime as dt
import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from audit.models import ActivityLog
from diagnostics import explain, suggestions
from diagnostics.models import QueryStatSnapshot, StatsSnapshot
from tests.db import roles
from tests.diagnostics.support import committed, connect, running, unique

pytestmark = pytest.mark.django_db


def staff(django_user_model, codenames, email="explain@example.com") -> Client:
    user = django_user_model.objects.create_user(
        email=email, password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="diagnostics", codename__in=codenames)
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def queryid_of(fragment: str) -> int:
    with connect() as conn:
        row = conn.execute(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE %s"
            " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY calls DESC LIMIT 1",
            (f"%{fragment}%",),
        ).fetchone()
    assert row, fragment
    return int(row[0])


@pytest.fixture
def probe_table():
    table = unique("diag_stmt")
    t = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int, account int, note text)").format(t),
            sql.SQL(
                "INSERT INTO {} SELECT g, g % 500, md5(g::text) FROM generate_series(1, 30000) g"
            ).format(t),
            sql.SQL("ANALYZE {}").format(t),
            sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        with connect() as conn:
            for n in range(3):
                conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE account = %s").format(t), (n,))
        yield table


def test_the_statement_page_shows_history_plan_and_an_index_suggestion(
    django_user_model, probe_table, diag_target
):
    queryid = queryid_of(f'FROM "{probe_table}" WHERE account = $1')
    with connect() as conn:
        database = conn.info.dbname
        major = conn.info.server_version // 10000
    now = timezone.now()
    for hours, calls in ((3, 10), (2, 40), (1, 25)):
        snap = StatsSnapshot.objects.create(
            alias=diag_target.alias,
            database=database,
            captured_at=now - dt.timedelta(hours=hours),
            database_size_bytes=1,
            connections_total=1,
            connections_active=1,
            connections_idle=0,
            connections_idle_in_transaction=0,
            max_connections=100,
        )
        QueryStatSnapshot.objects.create(
            snapshot=snap,
            queryid=queryid,
            query="q",
            calls=calls,
            total_exec_time_ms=calls * 2.0,
            rows=calls,
            calls_cumulative=calls,
            total_exec_time_ms_cumulative=0,
        )
    client = staff(django_user_model, ["view_diagnostics"])
    text = text_of(
        client.get(
            reverse("admin:diagnostics_statement"), {"db": diag_target.alias, "queryid": queryid}
        )
    )
    assert "Traceback" not in text
    # The history chart's table holds the snapshots' own deltas.
    for shown in ("10", "40", "25"):
        assert re.search(rf"<td[^>]*>{shown}</td>", text), shown
    if diag_target.kind == "nothing":
        # Another role's statement: its text (and so its plan) is hidden, with the grant.
        assert "GRANT pg_read_all_stats TO" in text
        return
    assert f'FROM "{probe_table}" WHERE account = $1' in text
    if major >= 16:
        assert "Seq Scan on" in text and probe_table in text
    else:
        assert "EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16" in text
    # 30,000 rows filtered on account, no index: the suggestion, as SQL (not a model).
    block = text[text.index(f'id="suggest-public-{probe_table}"') :]
    assert f'ON "public"."{probe_table}" ("account");' in block


def test_explain_analyze_needs_its_permission_runs_rolled_back_and_is_audited(
    django_user_model, probe_table
):
    t = sql.Identifier(probe_table)
    with connect() as conn:
        conn.execute(sql.SQL("SELECT max(id) FROM {}").format(t))
    queryid = queryid_of(f'SELECT max(id) FROM "{probe_table}"')  # noqa: S608 - a text to find
    url = reverse("admin:diagnostics_explain_analyze")
    viewer = staff(django_user_model, ["view_diagnostics"], email="viewer@example.com")
    viewer.get(reverse("admin:diagnostics_statement"), {"db": "default", "queryid": str(queryid)})
    token = viewer.cookies["csrftoken"].value
    refused = viewer.post(url, {"db": "default", "queryid": queryid, "csrfmiddlewaretoken": token})
    assert refused.status_code == 403
    analyst = staff(django_user_model, ["view_diagnostics", "explain_analyze"])
    page = text_of(
        analyst.get(
            reverse("admin:diagnostics_statement"), {"db": "default", "queryid": str(queryid)}
        )
    )
    assert "Run EXPLAIN ANALYZE" in page
    no_csrf = analyst.post(url, {"db": "default", "queryid": str(queryid)})
    assert no_csrf.status_code == 403
    token = analyst.cookies["csrftoken"].value
    text = text_of(
        analyst.post(url, {"db": "default", "queryid": queryid, "csrfmiddlewaretoken": token})
    )
    assert "actual time=" in text and "Execution Time" in text
    entry = ActivityLog.objects.get(action="diagnostics.explain_analyze")
    assert entry.resource_id == str(queryid)
    assert entry.details["result"] == "ran"


@pytest.mark.parametrize(
    "statement, reason",
    [
        ("SELECT * FROM t WHERE id = $1", "parameters"),
        ("SELECT * FROM t FOR UPDATE", "locks rows"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "data-modifying"),
        ("DELETE FROM t", "Only a SELECT"),
        ("SELECT 1; SELECT 2", "several statements"),
        ("SELECT * INTO t2 FROM t", "INTO"),
    ],
)
def test_explain_analyze_refuses_what_could_write_or_lock(statement, reason):
    problem = explain.read_only(statement)
    assert problem is not None and reason in problem
    assert explain.read_only("SELECT count(*) FROM t WHERE a > 3") is None


def test_a_volatile_function_that_writes_is_stopped_by_the_read_only_transaction():
    """The grammar check cannot see inside functions: the server's read-only mode can."""
    table = unique("diag_sneaky")
    t = sql.Identifier(table)
    fn = sql.Identifier(f"{table}_fn")
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int)").format(t),
            sql.SQL(
                "CREATE FUNCTION {}() RETURNS int LANGUAGE sql AS"
                " $$ INSERT INTO {} VALUES (1) RETURNING id $$"
            ).format(fn, t),
        ],
        [
            sql.SQL("DROP FUNCTION IF EXISTS {}()").format(fn),
            sql.SQL("DROP TABLE IF EXISTS {}").format(t),
        ],
    ):
        plan = explain.analyze("default", f'SELECT "{table}_fn"()')
        assert not plan.ok
        assert "read-only transaction" in (plan.error or "")
        with connect() as conn:
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone() == (0,)


@pytest.mark.db_role("superuser")  # the catalog edit (reltuples) is the superuser's
def test_suggestions_offer_the_django_migration_for_a_models_table():
    """core.execution_history is a model's table: once it is large (the planner's
    reltuples), a filter on a column no index leads with gets AddIndexConcurrently."""
    from django.db import connection

    with connection.cursor() as cursor:
        # Keeps autovacuum off the table for this test's transaction: its ANALYZE would
        # update the same pg_class row while waiting for the index build below (a
        # deadlock); a running one is cancelled by PostgreSQL when this lock waits for it.
        cursor.execute("LOCK TABLE core.execution_history IN SHARE UPDATE EXCLUSIVE MODE")
        cursor.execute(
            "UPDATE pg_class SET reltuples = 5000000 WHERE oid = 'core.execution_history'::regclass"
        )
        cursor.execute(
            "SELECT a.attname FROM pg_attribute a"
            " WHERE a.attrelid = 'core.execution_history'::regclass"
            " AND a.attnum > 0 AND NOT a.attisdropped AND NOT EXISTS (SELECT 1 FROM pg_index i"
            " WHERE i.indrelid = a.attrelid AND i.indkey[0] = a.attnum) ORDER BY a.attnum LIMIT 1"
        )
        (column,) = cursor.fetchone()
    # The statement is a text to parse, never executed.
    text = f'SELECT * FROM "core"."execution_history" WHERE "{column}" = $1'  # noqa: S608
    found = suggestions.suggest("default", [(42, text)])
    assert found.ok, found.error
    (s,) = found.rows
    assert s.columns == (column,) and s.queryids == (42,)
    assert s.model == "core.ExecutionHistory"
    assert "AddIndexConcurrently(" in (s.migration or "")
    assert "model_name='executionhistory'" in (s.migration or "")
    assert "atomic = False" in (s.migration or "")
    assert len(suggestions.index_name("execution_history", [column])) <= 30
    # Once an index leads with that column, there is nothing to suggest.
    with connection.cursor() as cursor:
        quoted = connection.ops.quote_name(column)
        cursor.execute(f"CREATE INDEX hint_probe ON core.execution_history ({quoted})")
    again = suggestions.suggest("default", [(42, text)])
    assert again.ok and again.rows == ()


def test_cancel_every_query_running_longer_than_n_after_confirmation(django_user_model):
    client = staff(django_user_model, ["view_diagnostics", "signal_backend"])
    client.get(reverse("admin:diagnostics_activity"))
    token = client.cookies["csrftoken"].value
    url = reverse("admin:diagnostics_signal_long")
    bad = client.post(url, {"kind": "cancel", "seconds": "soon", "csrfmiddlewaretoken": token})
    assert bad.status_code == 302
    # Another role's session (pg_signal_backend never reaches a superuser's): the migrator's.
    user, password = roles.cluster().credentials(roles.MIGRATOR)
    with running(
        "SELECT pg_sleep(60)", user=user, password=password, application_name="slow-one"
    ) as slow:
        import time

        time.sleep(1.2)
        confirm = text_of(
            client.post(url, {"kind": "cancel", "seconds": "1", "csrfmiddlewaretoken": token})
        )
        assert "Cancel queries running longer than 1 s?" in confirm
        value = f"{slow.pid}|{slow.backend_start.isoformat()}"
        assert value in confirm
        done = client.post(
            url,
            {
                "kind": "cancel",
                "seconds": "1",
                "confirm": "yes",
                "session": value,
                "csrfmiddlewaretoken": token,
            },
        )
        assert done.status_code == 302
        slow.thread.join(timeout=10)
        assert "canceling statement due to user request" in str(slow.error[0])
    entry = ActivityLog.objects.get(action="diagnostics.cancel_backend", resource_id=str(slow.pid))
    assert entry.details["result"] == "signalled"
    assert entry.details["running_longer_than_seconds"] == 1


def test_connections_breakdown_adds_up_to_pg_stat_activity(django_user_model, diag_target):
    with running("SELECT pg_sleep(30)", application_name="breakdown-probe"):
        client = staff(django_user_model, ["view_diagnostics"])
        text = text_of(
            client.get(reverse("admin:diagnostics_connections"), {"db": diag_target.alias})
        )
        with connect() as conn:
            (total,) = conn.execute(  # type: ignore[misc]
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()
            by_db: dict[str, int] = dict(
                conn.execute(
                    "SELECT coalesce(datname, '(no database)'), count(*) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' GROUP BY 1"
                ).fetchall()
            )
        # The page's own connection is one of them: the numbers match within that one.
        big = re.search(r'<p class="diag-big">([\d,]+) /', text)
        assert big is not None
        shown = int(big.group(1).replace(",", ""))
        assert abs(shown - total) <= 1
        section = text[text.index('id="by-database"') : text.index('id="by-role"')]
        for database, n in by_db.items():
            m = re.search(
                rf"<td>{re.escape(database)}</td><td class=\"num\">([\d,]+)</td>", section
            )
            assert m, database
            assert abs(int(m.group(1).replace(",", "")) - n) <= 1
        application = text[text.index('id="by-application"') : text.index('id="by-client"')]
        assert "breakdown-probe" in application  # application_name is visible to every role
        state = text[text.index('id="by-state"') :]
        if diag_target.kind == "nothing":
            assert "hidden (needs pg_read_all_stats)" in state
        else:
            assert "<td>active</td>" in state
