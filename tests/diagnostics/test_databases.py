"""Several databases on one server: the diagnostics of one never show the other's
tables, statements or history (the project's documents record a bug of that kind),
and pg_stat_statements that is missing or unreadable in a database says how to fix it."""

import html

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse
from psycopg import sql

from audit.models import ActivityLog
from diagnostics.models import StatsSnapshot, TableSizeSnapshot
from tests.diagnostics.support import NOBODY_ROLE, committed, connect, unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def diag_client(admin_client):
    return admin_client


@pytest.fixture
def make_database():
    """``make_database(template)`` creates a database on the embedded server."""
    made = []

    def make(template: str = "template1") -> str:
        name = unique("test_portal_diag")
        with connect(dbname="postgres") as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        made.append(name)
        return name

    yield make
    with connect(dbname="postgres") as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main_database() -> str:
    return connections["default"].settings_dict["NAME"]


# Space lists the largest tables of each schema group: give the marker tables enough
# rows (about 1 MB) to rank among the test database's public tables.
SIZED_TABLE = sql.SQL("CREATE TABLE {} AS SELECT generate_series(1, 30000) AS id")


def text_of(client, slug: str, alias: str, **params) -> str:
    name = "admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}"
    response = client.get(reverse(name), {"db": alias, **params})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_two_databases_on_one_server_never_mix(diag_client, add_alias, make_database):
    other_db = make_database()
    other = add_alias("other", NAME=other_db)
    main_db = main_database()
    main_table, other_table = unique("only_in_main"), unique("only_in_other")
    marker = unique("same_statement")
    statement = sql.SQL("SELECT %s::int AS {}").format(sql.Identifier(marker))

    with connect(dbname=other_db) as conn:
        conn.execute(SIZED_TABLE.format(sql.Identifier(other_table)))
        for n in range(4):
            conn.execute(statement, (n,))
    with committed(
        [SIZED_TABLE.format(sql.Identifier(main_table))],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(main_table))],
    ):
        with connect() as conn:
            for n in range(3):
                conn.execute(statement, (n,))

        # Space: each alias shows its own database's tables only.
        main_space = text_of(diag_client, "space", "default")
        other_space = text_of(diag_client, "space", other)
        assert main_table in main_space and other_table not in main_space
        assert other_table in other_space and main_table not in other_space
        assert f'<strong class="diag-database">{other_db}</strong>' in other_space

        # Queries: the same statement text, counted per database.
        def calls(text: str) -> str:
            at = text.index(f'<code>SELECT $1::int AS "{marker}"')
            start = text.rindex("<tr", 0, at)
            row = text[start : text.index("</tr>", at)]
            return row.split('class="num diag-calls">')[1].split("<")[0]

        assert calls(text_of(diag_client, "queries", "default", q=marker)) == "3"
        assert calls(text_of(diag_client, "queries", other, q=marker)) == "4"

        # History: snapshots are keyed by alias AND database name.
        call_command("snapshot_stats", "--min-interval", "0", "--database", "default")
        call_command("snapshot_stats", "--min-interval", "0", "--database", other)
        main_snap = StatsSnapshot.objects.get(alias="default")
        other_snap = StatsSnapshot.objects.get(alias=other)
        assert (main_snap.database, other_snap.database) == (main_db, other_db)
        other_tables = set(
            TableSizeSnapshot.objects.filter(snapshot=other_snap).values_list(
                "table_name", flat=True
            )
        )
        assert other_table in other_tables and main_table not in other_tables
        assert not other_snap.queries.filter(query__contains=main_table).exists()

        # A snapshot recorded for another database under the same alias (the alias was
        # re-pointed) never shows on this database's charts.
        StatsSnapshot.objects.create(
            alias=other,
            database="a_database_elsewhere",
            database_size_bytes=123_456_789_012,
            connections_total=99,
            connections_active=0,
            connections_idle=0,
            connections_idle_in_transaction=0,
            max_connections=100,
        )
        space = text_of(diag_client, "space", other)
        assert f"database {other_db}" in space  # the chart's series
        assert "115.0 GB" not in space  # 123,456,789,012 bytes


def test_a_reset_of_query_statistics_keeps_other_databases_statistics(
    diag_client, add_alias, make_database
):
    other_db = make_database()
    other = add_alias("other", NAME=other_db)
    marker = unique("reset_probe")
    # Column names are not part of a statement's identity: this shape is unique to this test.
    statement = sql.SQL("SELECT %s::bigint AS {}").format(sql.Identifier(marker))
    for dbname in (None, other_db):
        with connect(dbname=dbname) as conn:
            conn.execute(statement, (1,))
    shown = f'AS "{marker}"'
    assert shown in text_of(diag_client, "queries", other, q=marker)
    assert shown in text_of(diag_client, "queries", "default", q=marker)

    reset = reverse("admin:diagnostics_reset_queries")
    confirm = diag_client.post(reset, {"db": "default"})
    assert "Yes, reset" in confirm.content.decode()
    done = diag_client.post(reset, {"db": "default", "confirm": "yes"}, follow=True)
    assert "were reset" in done.content.decode()

    after = text_of(diag_client, "queries", "default", q=marker)
    assert shown not in after
    assert shown in text_of(diag_client, "queries", other, q=marker)
    entry = ActivityLog.objects.get(action="diagnostics.reset_query_stats")
    assert entry.details["result"] == "reset"
    assert entry.resource_id == main_database()
    # "Statistics since" now starts at the portal's reset of this database.
    assert f"statistics since <strong>{entry.created_at:%Y-%m-%d %H:%M}" in after


def test_a_database_without_pg_stat_statements_says_how_to_install_it(
    diag_client, add_alias, make_database
):
    bare = add_alias("bare", NAME=make_database(template="template0"))
    text = text_of(diag_client, "queries", bare)
    assert "pg_stat_statements is not installed in database" in text
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" in text
    assert "--database-flags=cloudsql.enable_pg_stat_statements=on" in text
    assert "pg_stat_statements is not installed" in text_of(diag_client, "overview", bare)
    privileges = text_of(diag_client, "privileges", bare)
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" in privileges
    # History still records sizes and connections, and says what it skipped.
    call_command("snapshot_stats", "--min-interval", "0", "--database", bare)
    assert StatsSnapshot.objects.filter(alias=bare).exists()


def test_pg_stat_statements_unreadable_by_the_role_says_which_grant_is_missing(
    diag_client, add_alias, make_database, diag_roles
):
    locked_db = make_database()
    with connect(dbname=locked_db) as conn:
        conn.execute("REVOKE SELECT ON pg_stat_statements FROM PUBLIC")
    alias = add_alias("locked", NAME=locked_db, USER=NOBODY_ROLE, PASSWORD=diag_roles[NOBODY_ROLE])
    text = text_of(diag_client, "queries", alias)
    assert f"Role {NOBODY_ROLE} may not read public.pg_stat_statements." in text
    assert f'GRANT SELECT ON "public"."pg_stat_statements" TO "{NOBODY_ROLE}";' in text
