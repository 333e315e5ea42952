"""Maintenance figures against the catalog: sequences counted for every column that
uses them (with that column's type) and their values left; "Autovacuum at" as
autovacuum computes it, table settings included; the paginated, sortable table list."""

import pytest
from django.db import connection

from diagnostics.queries import maintenance
from diagnostics.queries.server import server_info

# The scratch schemas these tests make in their transaction need CREATE on the
# database: the migrator's (tests/db/roles.py), not the application role's.
pytestmark = pytest.mark.usefixtures("default_as_migrator")


def execute(*statements: str) -> list:
    rows: list = []
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def major() -> int:
    info = server_info("default").first()
    assert info is not None
    return info.major


def test_a_bigint_sequence_used_by_an_integer_default_counts_with_the_integer_limit():
    execute(
        "CREATE SCHEMA seq_test",
        "CREATE TABLE seq_test.owner (id bigserial PRIMARY KEY)",
        "CREATE TABLE seq_test.borrower (id integer"
        " DEFAULT nextval('seq_test.owner_id_seq') PRIMARY KEY)",
        # 95.5 % of 2^31 - 1: nothing left to speak of on the integer column.
        "SELECT setval('seq_test.owner_id_seq', 2050947617)",
    )
    rows = [s for s in maintenance.sequences("default", limit=500) if s.schema == "seq_test"]
    by_column = {s.column: s for s in rows}
    assert set(by_column) == {"seq_test.owner.id", "seq_test.borrower.id"}
    borrower = by_column["seq_test.borrower.id"]
    assert borrower.column_type == "integer"
    assert borrower.limit_value == 2**31 - 1
    ((last_value, max_value),) = execute(
        "SELECT last_value, max_value FROM pg_sequences"
        " WHERE schemaname = 'seq_test' AND sequencename = 'owner_id_seq'"
    )
    assert borrower.last_value == last_value
    assert borrower.values_left == 2**31 - 1 - last_value
    assert borrower.used_ratio == pytest.approx((last_value - 1) / (2**31 - 2))
    owner = by_column["seq_test.owner.id"]
    assert owner.limit_value == max_value
    assert owner.values_left == max_value - last_value
    # The integer column, the one that runs out first, is listed first.
    assert rows[0].column == "seq_test.borrower.id"


def test_values_left_counts_the_steps_to_the_limit():
    execute(
        "CREATE SCHEMA seq_test",
        "CREATE SEQUENCE seq_test.small MAXVALUE 10000 INCREMENT 3",
        "SELECT setval('seq_test.small', 8059)",
        "CREATE SEQUENCE seq_test.fresh MAXVALUE 100 START 91",
        "CREATE SEQUENCE seq_test.down INCREMENT -1 MINVALUE -50 MAXVALUE -1",
        "SELECT setval('seq_test.down', -40)",
    )
    rows = {
        s.name: s for s in maintenance.sequences("default", limit=500) if s.schema == "seq_test"
    }
    assert rows["small"].values_left == (10000 - 8059) // 3  # 647
    assert rows["fresh"].values_left == 10  # 91..100, never called yet
    assert rows["down"].values_left == 10  # -41..-50
    for name, seq in rows.items():  # each count equals nextval calls until the error
        with connection.cursor() as cursor:
            cursor.execute("SAVEPOINT count_left")
            calls = 0
            try:
                while calls <= 1000:
                    cursor.execute("SELECT nextval(%s)", [f"seq_test.{name}"])
                    calls += 1
            except Exception:
                cursor.execute("ROLLBACK TO SAVEPOINT count_left")
            assert calls == seq.values_left, name


def table_row(name: str) -> maintenance.TableVacuum:
    result = maintenance.tables("default", server_major=major(), search=f"av_test.{name}")
    assert result.ok, result.error
    (row,) = [r for r in result if r.table_name == name]
    return row


def test_autovacuum_at_follows_the_tables_own_settings():
    execute(
        "CREATE SCHEMA av_test",
        "CREATE TABLE av_test.plain (id int)",
        "CREATE TABLE av_test.tuned (id int) WITH"
        " (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000)",
        "CREATE TABLE av_test.off (id int) WITH (autovacuum_enabled = off)",
        "INSERT INTO av_test.plain SELECT generate_series(1, 20000)",
        "INSERT INTO av_test.tuned SELECT generate_series(1, 20000)",
        "INSERT INTO av_test.off SELECT generate_series(1, 20000)",
        "ANALYZE av_test.plain, av_test.tuned, av_test.off",
    )
    ((base, scale),) = execute(
        "SELECT current_setting('autovacuum_vacuum_threshold')::float8,"
        " current_setting('autovacuum_vacuum_scale_factor')::float8"
    )
    ((reltuples,),) = execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'av_test.plain'::regclass"
    )
    cap = float("inf")
    if major() >= 18:
        ((cap,),) = execute("SELECT current_setting('autovacuum_vacuum_max_threshold')::float8")
        cap = float("inf") if cap < 0 else cap
    assert table_row("plain").autovacuum_threshold == pytest.approx(
        min(base + scale * reltuples, cap)
    )
    assert table_row("tuned").autovacuum_threshold == pytest.approx(
        min(1000 + 0.01 * reltuples, cap)
    )
    off = table_row("off")
    assert off.autovacuum_threshold is None
    assert off.autovacuum_off == "autovacuum_enabled = off on this table"
    assert off.table_settings == "autovacuum_enabled=off"


def test_pg18_max_threshold_caps_autovacuum_at():
    if major() < 18:
        pytest.skip("autovacuum_vacuum_max_threshold exists from PostgreSQL 18")
    execute(
        "CREATE SCHEMA av_test",
        "CREATE TABLE av_test.capped (id int) WITH (autovacuum_vacuum_max_threshold = 500)",
        "INSERT INTO av_test.capped SELECT generate_series(1, 20000)",
        "ANALYZE av_test.capped",
    )
    assert table_row("capped").autovacuum_threshold == 500


def test_the_table_list_pages_and_sorts_every_table_and_matches_the_statistics():
    execute(
        "CREATE SCHEMA av_test",
        *(f"CREATE TABLE av_test.t{i:02d} (id int)" for i in range(30)),
    )
    server = major()
    seen = []
    for offset in (0, 25):
        page = maintenance.tables(
            "default", server_major=server, order="name", search="av_test.", offset=offset
        )
        assert page.ok, page.error
        seen += [r.table_name for r in page]
        assert all(r.total == 30 for r in page)
    assert seen == [f"t{i:02d}" for i in range(30)]
    # Every figure of a row equals pg_stat_user_tables' own.
    everything = maintenance.tables("default", server_major=server, limit=10_000)
    catalog = {
        (s, t): (live, dead, mod)
        for s, t, live, dead, mod in execute(
            "SELECT schemaname, relname, n_live_tup, n_dead_tup, n_mod_since_analyze"
            " FROM pg_stat_user_tables"
        )
    }
    assert {
        (r.schema, r.table_name): (r.n_live_tup, r.n_dead_tup, r.n_mod_since_analyze)
        for r in everything
    } == catalog
