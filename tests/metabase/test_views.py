"""The curated Metabase views (analytics/migrations/0004_metabase_views.py).

Known rows go into core and analytics; the Metabase role (a real password login) reads
the views and must get the aggregates a person would compute by hand, and nothing that
identifies anyone.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from psycopg import sql

from tests.metabase.support import fetch, login, metabase_roles, relations, run

# metabase_access creates and alters roles: the instance's administrator, here the
# cluster's superuser, by name (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_superuser"),
]

VIEWS = [
    "daily_active_users",
    "daily_model_usage",
    "daily_sandbox_errors",
    "daily_sessions_by_status",
    "daily_tool_cache",
    "database_size_history",
]
README = Path(__file__).resolve().parents[2] / "docs" / "metabase.md"
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def access(monkeypatch):
    with metabase_roles(monkeypatch) as roles:
        run(*roles.args)
        yield roles


@pytest.fixture
def data():
    """Rows with known timestamps; returns what must not leak."""
    from accounts.models import User
    from analytics.models import UserSession
    from core.models import CodexSession, ExecutionHistory, McpCache, SandboxExecution
    from diagnostics.models import StatsSnapshot

    alice = User.objects.create_user(email="alice@example.com", password="x" * 16)
    bob = User.objects.create_user(email="bob@example.com", password="x" * 16)

    s1 = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="caller-1", model="gpt-a", status="completed"
    )
    s2 = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="caller-2", model="gpt-b", status="failed"
    )
    CodexSession.objects.filter(pk=s1.pk).update(created_at=at("2025-01-01T10:00:00+00:00"))
    # 23:30 in New York on the 1st is the 2nd in UTC: days are UTC days.
    CodexSession.objects.filter(pk=s2.pk).update(created_at=at("2025-01-01T23:30:00-05:00"))
    for session, tokens, ms, when in (
        (s1, 100, 200, "2025-01-01T12:00:00+00:00"),
        (s1, None, 400, "2025-01-01T13:00:00+00:00"),
        (s2, 50, None, "2025-01-02T05:00:00+00:00"),
    ):
        row = ExecutionHistory.objects.create(
            session=session, prompt="p", tokens_used=tokens, execution_time_ms=ms
        )
        ExecutionHistory.objects.filter(pk=row.pk).update(created_at=at(when))

    for error in (None, "", "syntax error at or near"):
        run = SandboxExecution.objects.create(session=s1, sql_query="SELECT 1", error=error)
        SandboxExecution.objects.filter(pk=run.pk).update(
            executed_at=at("2025-01-03T08:00:00+00:00")
        )

    cached = at("2025-01-04T00:00:00+00:00")
    for tool, arguments, expires in (
        ("search", {"q": 1}, at("2999-01-01T00:00:00+00:00")),  # live
        ("search", {"q": 1}, cached + dt.timedelta(hours=1)),  # expired; same call again
        ("search", {"q": 2}, None),  # never expires
        ("fetch", {"url": "a"}, cached + dt.timedelta(seconds=3600)),
        ("fetch", {"url": "b"}, cached + dt.timedelta(seconds=7200)),
    ):
        entry = McpCache.objects.create(tool_name=tool, arguments=arguments, expires_at=expires)
        McpCache.objects.filter(pk=entry.pk).update(cached_at=cached)

    start = at("2025-01-05T09:00:00+00:00")
    for user, minutes, actions in ((alice, 30, 3), (alice, None, 2), (bob, 60, 0)):
        UserSession.objects.create(
            user=user,
            session_start=start,
            session_end=start + dt.timedelta(minutes=minutes) if minutes else None,
            ip_address="203.0.113.7",
            user_agent="Mozilla/5.0 secret-agent",
            actions_count=actions,
        )

    for database, size, when in (
        ("portal", 1_048_576, "2025-01-06T00:00:00+00:00"),
        ("portal", 1_572_864, "2025-01-07T00:00:00+00:00"),
        ("portal", 1_468_006, "2025-01-08T00:00:00+00:00"),
        ("other", 5_000_000, "2025-01-07T00:00:00+00:00"),
    ):
        StatsSnapshot.objects.create(
            alias="default",
            database=database,
            captured_at=at(when),
            database_size_bytes=size,
            connections_total=5,
            connections_active=1,
            connections_idle=4,
            connections_idle_in_transaction=0,
            max_connections=100,
        )
    return {
        "secrets": [
            "alice@example.com",
            "bob@example.com",
            "203.0.113.7",
            "secret-agent",
            str(alice.pk),
            str(bob.pk),
            alice.password,
        ]
    }


def read(access, view: str, key=lambda row: row[:2]) -> list[tuple]:
    """All rows of a view as the Metabase role reads them, sorted by ``key``."""
    with login(access) as conn:
        rows = conn.execute(
            sql.SQL("SELECT * FROM {}").format(sql.Identifier("analytics", view))
        ).fetchall()
    return sorted(rows, key=key)


def test_the_migration_creates_the_six_views_in_analytics():
    assert [name for _, name in relations(["analytics"], "v")] == VIEWS


def test_daily_model_usage_counts_executions_tokens_and_time_per_model(access, data):
    assert read(access, "daily_model_usage") == [
        (dt.date(2025, 1, 1), "gpt-a", 2, 1, 100, Decimal("300.0")),
        (dt.date(2025, 1, 2), "gpt-b", 1, 1, 50, None),
    ]


def test_daily_sessions_by_status_counts_sessions_per_utc_day(access, data):
    assert read(access, "daily_sessions_by_status") == [
        (dt.date(2025, 1, 1), "completed", 1),
        (dt.date(2025, 1, 2), "failed", 1),
    ]


def test_daily_sandbox_errors_counts_only_non_empty_errors(access, data):
    assert read(access, "daily_sandbox_errors") == [
        (dt.date(2025, 1, 3), 3, 1, Decimal("0.3333")),
    ]


def test_daily_tool_cache_counts_live_expired_and_refilled_entries(access, data):
    rows = read(access, "daily_tool_cache")
    day = dt.date(2025, 1, 4)
    fetch_row, search_row = rows
    assert fetch_row == (day, "fetch", 2, 0, 2, 0, 0, Decimal("5400.0"))
    assert search_row[:7] == (day, "search", 3, 2, 1, 1, 1)


def test_daily_active_users_exposes_counts_only(access, data):
    assert read(access, "daily_active_users") == [
        (dt.date(2025, 1, 5), 2, 3, 5, Decimal("45.0")),
    ]


def test_database_size_history_keeps_databases_apart(access, data):
    rows = read(access, "database_size_history", key=lambda r: (r[3], r[0]))
    assert [(r[3], r[4], r[5], r[6]) for r in rows] == [
        ("other", 5_000_000, Decimal("4.8"), None),
        ("portal", 1_048_576, Decimal("1.0"), None),
        ("portal", 1_572_864, Decimal("1.5"), 524_288),
        ("portal", 1_468_006, Decimal("1.4"), -104_858),
    ]


def test_no_view_exposes_identities_or_reads_auth_or_audit(access, data):
    read_schemas = fetch(
        """
        SELECT DISTINCT v.relname::text, tn.nspname::text
        FROM pg_class v
        JOIN pg_namespace vn ON vn.oid = v.relnamespace
        JOIN pg_rewrite r ON r.ev_class = v.oid
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE vn.nspname = 'analytics' AND v.relkind = 'v'
        """
    )
    assert {view for view, _ in read_schemas} == set(VIEWS)
    assert {schema for _, schema in read_schemas} <= {"analytics", "core"}

    columns = fetch(
        "SELECT column_name::text FROM information_schema.columns "
        "WHERE table_schema = 'analytics' AND table_name = ANY(%(v)s)",
        {"v": VIEWS},
    )
    assert not [c for (c,) in columns if re.search(r"email|password|ip|agent|user_id", c)]

    with login(access) as conn:
        everything = " ".join(
            str(
                conn.execute(
                    sql.SQL("SELECT * FROM {}").format(sql.Identifier("analytics", v))
                ).fetchall()
            )
            for v in VIEWS
        )
    for secret in data["secrets"]:
        assert secret not in everything


def test_every_view_and_column_has_a_comment_for_metabase():
    missing = fetch(
        """
        SELECT c.relname::text, a.attname::text
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE n.nspname = 'analytics' AND c.relkind = 'v'
          AND col_description(c.oid, a.attnum) IS NULL
        UNION ALL
        SELECT c.relname::text, NULL FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'analytics' AND c.relkind = 'v' AND obj_description(c.oid) IS NULL
        """
    )
    assert missing == []


def test_the_readme_documents_every_view_and_column():
    text = README.read_text()
    assert "## Connect Metabase" in text
    for view in VIEWS:
        heading = f"#### `analytics.{view}`"
        assert heading in text, view
        section = text.split(heading, 1)[1].split("####", 1)[0]
        columns = fetch(
            "SELECT column_name::text FROM information_schema.columns "
            "WHERE table_schema = 'analytics' AND table_name = %(v)s",
            {"v": view},
        )
        for (column,) in columns:
            assert f"| `{column}` |" in section, f"{view}.{column}"


def test_the_views_migration_reverses_and_views_made_again_stay_readable(access):
    call_command("migrate", "analytics", "0003", verbosity=0)
    try:
        assert relations(["analytics"], "v") == []
    finally:
        call_command("migrate", "analytics", verbosity=0)
    assert [name for _, name in relations(["analytics"], "v")] == VIEWS
    # Re-created by a migration after the command ran: readable at once (default privileges).
    with login(access) as conn:
        for view in VIEWS:
            conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("analytics", view)))
