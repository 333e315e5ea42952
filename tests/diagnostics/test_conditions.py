"""Real conditions on the embedded PostgreSQL, seen through the diagnostics pages as a
superuser, as a role holding only pg_monitor and as a role holding nothing: a long
pg_sleep, a LOCK TABLE queue, an unused index, a query run N times, a sequence near
its limit. Each test creates the condition with real second connections."""

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connections
from django.test import Client
from django.urls import reverse
from psycopg import sql

from audit.models import ActivityLog
from tests.diagnostics.support import committed, connect, running, scalar, unique, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def diag_client(django_user_model):
    """A logged-in staff user with the three diagnostics permissions; CSRF enforced."""
    user = django_user_model.objects.create_user(
        email="oncall@example.com", password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="diagnostics",
            codename__in=["view_diagnostics", "signal_backend", "reset_query_stats"],
        )
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def get_text(client, name: str, alias: str, **params) -> str:
    response = client.get(reverse(f"admin:diagnostics_{name}"), {"db": alias, **params})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def row_of(text: str, anchor: str) -> str:
    """The <tr> element containing ``anchor``."""
    at = text.index(anchor)
    start = text.rindex("<tr", 0, at)
    return text[start : text.index("</tr>", at)]


def csrf_token(client) -> str:
    return client.cookies["csrftoken"].value


def test_a_long_pg_sleep_shows_on_activity_and_a_confirmed_cancel_stops_it(
    diag_client, diag_target
):
    with running("SELECT pg_sleep(60)", application_name="diag-sleeper") as sleeper:
        text = get_text(diag_client, "activity", diag_target.alias)
        row = row_of(text, f'id="pid-{sleeper.pid}"')
        assert "diag-sleeper" in row
        if diag_target.kind == "nothing":
            assert "hidden (needs pg_read_all_stats)" in row
        else:
            assert "SELECT pg_sleep(60)" in row
            assert ">active<" in row

        # Filters: long-running keeps it (it started more than 0 s ago), "idle" drops it.
        running_long = get_text(diag_client, "activity", diag_target.alias, min_seconds="0")
        if diag_target.kind != "nothing":  # the state is hidden from a role with nothing
            assert f'id="pid-{sleeper.pid}"' in running_long
        assert f'id="pid-{sleeper.pid}"' not in get_text(
            diag_client, "activity", diag_target.alias, state="idle"
        )

        signal_url = reverse("admin:diagnostics_signal")
        form = {
            "db": diag_target.alias,
            "pid": sleeper.pid,
            "backend_start": sleeper.backend_start.isoformat(),
            "kind": "cancel",
        }
        # Without the CSRF token the POST is refused.
        assert diag_client.post(signal_url, form).status_code == 403
        form["csrfmiddlewaretoken"] = csrf_token(diag_client)

        if diag_target.kind == "nothing":
            # The session is hidden from this role (no backend_start): it offers no
            # buttons and refuses to signal what it cannot identify.
            assert "Cancel…" not in row
            refused = diag_client.post(signal_url, {**form, "confirm": "yes"}, follow=True)
            assert "cannot be identified safely" in refused.content.decode()
            entry = ActivityLog.objects.get(resource_id=str(sleeper.pid))
            assert entry.details["result"] == "hidden"
            assert sleeper.thread.is_alive() and not sleeper.error
            return

        # The first POST only asks for confirmation.
        confirm = diag_client.post(signal_url, form)
        assert confirm.status_code == 200
        confirm_text = html.unescape(confirm.content.decode())
        assert f"Yes, cancel the query of session {sleeper.pid}" in confirm_text
        assert not sleeper.error
        assert not ActivityLog.objects.filter(resource_id=str(sleeper.pid)).exists()

        done = diag_client.post(signal_url, {**form, "confirm": "yes"}, follow=True)
        assert done.status_code == 200
        done_text = html.unescape(done.content.decode())
        entry = ActivityLog.objects.get(
            action="diagnostics.cancel_backend", resource_id=str(sleeper.pid)
        )
        assert entry.actor_email == "oncall@example.com"
        assert entry.resource_type == "pg_backend"
        assert entry.details["backend_start"] == sleeper.backend_start.isoformat()
        assert entry.details["database"] == connections["default"].settings_dict["NAME"]
        if diag_target.kind == "superuser":
            assert f"Cancelled the query of session {sleeper.pid}" in done_text
            sleeper.thread.join(timeout=10)
            assert "canceling statement due to user request" in str(sleeper.error[0])
            assert entry.details["result"] == "signalled"
            assert "pg_sleep(60)" in entry.details["query"]
        else:
            # The sleeper belongs to a superuser: the server refuses, the page says so,
            # and the refusal is in the audit trail.
            assert "PostgreSQL refused" in done_text
            assert entry.details["result"] == "refused"
            assert not sleeper.error
            assert sleeper.thread.is_alive()


def test_a_reused_pid_is_never_signalled(diag_client):
    with running("SELECT pg_sleep(60)") as sleeper:
        form = {
            "db": "default",
            "pid": sleeper.pid,
            # The same pid with another start time: a newer session that reused the pid.
            "backend_start": sleeper.backend_start.replace(microsecond=0).isoformat(),
            "kind": "terminate",
            "confirm": "yes",
        }
        diag_client.get(reverse("admin:diagnostics_activity"))  # sets the CSRF cookie
        form["csrfmiddlewaretoken"] = csrf_token(diag_client)
        done = diag_client.post(reverse("admin:diagnostics_signal"), form, follow=True)
        assert "nothing was signalled" in done.content.decode()
        assert sleeper.thread.is_alive() and not sleeper.error
        entry = ActivityLog.objects.get(resource_id=str(sleeper.pid))
        assert entry.details["result"] == "not_found"


def test_a_lock_queue_shows_on_blocking_with_the_root_blocker_first(diag_client, diag_target):
    table = unique("diag_lock")
    ident = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int)").format(ident),
            sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(ident),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(ident)],
    ):
        holder = connect(autocommit=False, application_name="diag-holder")
        holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(ident))
        holder_pid = holder.info.backend_pid
        try:
            alter = sql.SQL("ALTER TABLE {} ADD COLUMN extra int").format(ident)
            select = sql.SQL("SELECT count(*) FROM {}").format(ident)
            with running(alter, application_name="diag-alter") as first:
                with connect() as watcher:
                    wait_for(
                        lambda: scalar(
                            watcher, "SELECT cardinality(pg_blocking_pids(%s)) > 0", (first.pid,)
                        ),
                        what="the ALTER to queue",
                    )
                with running(select, application_name="diag-select") as second:
                    with connect() as watcher:
                        wait_for(
                            lambda: scalar(
                                watcher,
                                "SELECT cardinality(pg_blocking_pids(%s)) = 2",
                                (second.pid,),
                            ),
                            what="the SELECT to queue behind both",
                        )
                    text = get_text(diag_client, "blocking", diag_target.alias)
                    positions = [
                        text.index(f'id="pid-{pid}"') for pid in (holder_pid, first.pid, second.pid)
                    ]
                    assert positions == sorted(positions), "root blocker, then its queue"
                    holder_row = row_of(text, f'id="pid-{holder_pid}"')
                    assert "root blocker" in holder_row
                    assert "2 sessions" in holder_row
                    assert "AccessExclusiveLock on " + table in row_of(
                        text, f'id="pid-{first.pid}"'
                    )
                    if diag_target.kind == "nothing":
                        # Visible as a pid with no identity: no action offered.
                        assert "hidden (needs pg_read_all_stats)" in holder_row
                        assert "Cancel…" not in holder_row
                    else:
                        assert "LOCK TABLE" in holder_row
                        assert "idle in transaction" in holder_row
                        assert "Cancel…" in holder_row and "Terminate…" in holder_row

                    # The Space page does not queue behind the lock: it reports the
                    # table as locked instead of measuring it.
                    space = get_text(diag_client, "space", diag_target.alias)
                    assert "Not measured because another session holds" in space
                    assert f"public.{table}" in space
        finally:
            holder.rollback()
            holder.close()


def test_an_unused_and_a_redundant_index_show_on_indexes(diag_client, diag_target):
    table = unique("diag_idx")
    t = sql.Identifier(table)
    unused, covering = f"{table}_v", f"{table}_v_id"
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int, v int)").format(t),
            sql.SQL(
                "INSERT INTO {} SELECT g, mod(g, 1000) FROM generate_series(1, 20000) g"
            ).format(t),
            sql.SQL("CREATE INDEX {} ON {} (v)").format(sql.Identifier(unused), t),
            sql.SQL("CREATE INDEX {} ON {} (v, id)").format(sql.Identifier(covering), t),
            sql.SQL("ANALYZE {}").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        text = get_text(diag_client, "indexes", diag_target.alias)
        unused_section = text[text.index("Unused indexes") : text.index("Duplicate and redundant")]
        assert f"public.{unused}" in unused_section
        assert f"DROP INDEX CONCURRENTLY public.{unused};" in unused_section
        assert "Index usage counted since" in text
        duplicates = text[text.index("Duplicate and redundant") : text.index("Invalid indexes")]
        row = row_of(duplicates, f'id="dup-public-{unused}"')
        assert covering in row
        assert "lead the other's" in row
        assert f"DROP INDEX CONCURRENTLY public.{unused};" in row


def test_a_query_run_n_times_shows_on_queries_with_that_many_calls(diag_client, diag_target):
    table = unique("diag_probe")
    t = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int)").format(t),
            sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        with diag_target.connect() as conn:  # run as the role the page connects as
            for n in range(7):
                conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE id > %s").format(t), (n,))
        text = get_text(diag_client, "queries", diag_target.alias, q=table, order="calls")
        row = row_of(text, f'FROM "{table}" WHERE id > $1')
        assert re.search(r'<td class="num diag-calls">7</td>', row), row
        assert "statistics since" in text


# Reading a sequence's position locks it until the end of the top-level transaction
# (sequence locks ignore savepoints): without a test-wide transaction the page's own
# transaction releases it, as in production, and the sequences can be dropped after.
@pytest.mark.django_db(transaction=True)
def test_a_nearly_exhausted_sequence_shows_on_maintenance(diag_client, diag_target):
    seq = unique("diag_seq")
    table = unique("diag_intcol")
    s, t = sql.Identifier(seq), sql.Identifier(table)
    narrow = f"{table}_id_seq"
    with committed(
        [
            sql.SQL("CREATE SEQUENCE {} MAXVALUE 1000").format(s),
            sql.SQL("SELECT setval({}, 990)").format(sql.Literal(seq)),
            # A bigint sequence feeding an integer column: the column's type is the limit.
            sql.SQL("CREATE TABLE {} (id integer)").format(t),
            sql.SQL("CREATE SEQUENCE {} AS bigint OWNED BY {}.id").format(
                sql.Identifier(narrow), t
            ),
            sql.SQL("SELECT setval({}, 2000000000)").format(sql.Literal(narrow)),
        ],
        [
            sql.SQL("DROP TABLE IF EXISTS {}").format(t),
            sql.SQL("DROP SEQUENCE IF EXISTS {}").format(s),
        ],
    ):
        text = get_text(diag_client, "maintenance", diag_target.alias)
        if diag_target.kind != "superuser":
            # Reading a sequence's position needs a grant neither role has: the sequence
            # is counted among the unreadable ones, never measured. (The note names only
            # the first 20 by schema and name; the test apps' sequences come before it.)
            assert "cannot be read by role" in text
            assert f'id="seq-public-{seq}"' not in text
            assert f'id="seq-public-{narrow}"' not in text
            with connect() as conn:
                for name in (seq, narrow):
                    conn.execute(
                        sql.SQL("GRANT SELECT ON SEQUENCE {} TO {}").format(
                            sql.Identifier(name), sql.Identifier(diag_target.role)
                        )
                    )
            text = get_text(diag_client, "maintenance", diag_target.alias)
        row = row_of(text, f'id="seq-public-{seq}"')
        assert "99.0 %" in row
        assert "diag-bad" in row
        narrow_row = row_of(text, f'id="seq-public-{narrow}"')
        assert "2,147,483,647" in narrow_row
        assert "integer" in narrow_row
        assert "93.1 %" in narrow_row
