"""Credentials never leave a statement text: every quoting form, every statement kind.

The pure property tests feed generated secrets, written in each of PostgreSQL's
literal forms, into each kind of statement that carries credentials, and check that
neither the secret nor its literal survives :func:`redact_sql` (also for texts cut
anywhere, as ``track_activity_query_size`` cuts them). The end-to-end tests run the
statements for real against the test database and read them back where a Viewer or
Metabase would: the Queries page (pg_stat_statements), the Activity page and the
cancel confirmation page (pg_stat_activity), and the stored snapshot rows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from accounts.roles import OPERATOR, VIEWER
from audit.models import ActivityLog
from diagnostics.models import QueryStatSnapshot, StatsSnapshot
from diagnostics.redaction import REDACTED_LITERAL, UNPARSEABLE
from diagnostics.redaction import redact_sql as _redact_sql
from tests.audit.support import make_user
from tests.diagnostics.support import connect, unique, wait_for


def redact_sql(text: str) -> str:
    return _redact_sql(text) or ""


PREFIX = "Zq7"  # appears in no statement template, so any trace of it is the secret's

# Secrets: a recognisable start, then anything a password may hold (quotes,
# backslashes, dollars, spaces, non-ASCII).
secret_tail = st.text(
    alphabet=st.sampled_from([*"abcXYZ0189 '\\$!&;-_é€\u4e2d"]), min_size=3, max_size=24
)
secrets = secret_tail.map(lambda t: PREFIX + t)


def plain(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def escaped(s: str) -> str:
    return "E'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dollar(s: str, tag: str = "") -> str | None:
    delimiter = f"${tag}$"
    if delimiter in s or s.endswith("$"):
        return None
    return f"{delimiter}{s}{delimiter}"


def unicode_escaped(s: str, escape: str = "\\") -> str:
    """U&'...' with every other character written as a code point escape."""
    out = []
    for i, c in enumerate(s):
        if c in ("'", escape) or i % 2:
            out.append(f"{escape}{ord(c):04X}" if ord(c) <= 0xFFFF else f"{escape}+{ord(c):06X}")
        else:
            out.append(c)
    literal = "U&'" + "".join(out) + "'"
    return literal if escape == "\\" else f"{literal} UESCAPE '{escape}'"


def national(s: str) -> str:
    return "N" + plain(s)


STRING_FORMS: dict[str, Callable[[str], str | None]] = {
    "plain": plain,
    "escaped": escaped,
    "dollar": dollar,
    "tagged": lambda s: dollar(s, "pw_1"),
    "unicode": unicode_escaped,
    "unicode-uescape": lambda s: unicode_escaped(s, "!"),
}
# Where the grammar takes any expression, N'...', B'...' and X'...' are possible too.
EXPRESSION_FORMS: dict[str, Callable[[str], str | None]] = {
    **STRING_FORMS,
    "national": national,
    "hex": lambda s: "X'" + s.encode().hex() + "'",
    "bits": lambda s: "B'" + "".join(f"{b:08b}" for b in s.encode()) + "'",
}

# Statement kinds: {lit} is where the credential goes.
STRING_STATEMENTS = [
    "CREATE ROLE probe LOGIN PASSWORD {lit} VALID UNTIL 'infinity'",
    "CREATE USER probe WITH ENCRYPTED PASSWORD {lit}",
    "ALTER ROLE probe WITH PASSWORD {lit}",
    "ALTER USER probe PASSWORD {lit}",
    "ALTER ROLE probe SET app.setting = {lit}",
    "CREATE USER MAPPING FOR probe SERVER srv OPTIONS (user 'probe', password {lit})",
    "ALTER USER MAPPING FOR CURRENT_USER SERVER srv OPTIONS (SET password {lit})",
    "CREATE SUBSCRIPTION sub CONNECTION {lit} PUBLICATION pub WITH (connect = false)",
    "ALTER SUBSCRIPTION sub CONNECTION {lit}",
    "CREATE SERVER srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host {lit}, port '5432')",
    "ALTER SERVER srv OPTIONS (ADD password_required {lit})",
    "CREATE FOREIGN DATA WRAPPER w OPTIONS (token {lit})",
    "SET app.api_key = {lit}",
    "ALTER SYSTEM SET app.secret = {lit}",
    "ALTER DATABASE portal SET app.token = {lit}",
]
EXPRESSION_STATEMENTS = [
    "SELECT dblink_connect({lit})",
    "SELECT * FROM dblink({lit}, 'SELECT 1') AS t(a int)",
    "SELECT dblink_exec('host=h ' || {lit}, 'SELECT 1')",
    "SELECT set_config('app.api_key', {lit}, false)",
    "SELECT pgp_sym_encrypt('data', {lit})",
    "SELECT hmac('data', {lit}, 'sha256')",
    "SELECT crypt({lit}, gen_salt('bf'))",
    "SELECT app.check_password(id, {lit}) FROM users",
]


def forms_of(secret: str, forms: dict) -> list[str]:
    return [lit for form in forms.values() if (lit := form(secret)) is not None]


def traces(secret: str, literal: str) -> list[str]:
    """What must not appear in a redacted text: the secret and its written literal."""
    return [secret, literal, secret[: len(PREFIX) + 2]]


cases = st.one_of(
    st.tuples(st.sampled_from(STRING_STATEMENTS), st.sampled_from(sorted(STRING_FORMS))),
    st.tuples(st.sampled_from(EXPRESSION_STATEMENTS), st.sampled_from(sorted(EXPRESSION_FORMS))),
)
around = st.sampled_from(
    [
        ("", ""),
        ("SELECT 'é'; ", "; SELECT 1"),
        ("/* batch */ BEGIN; ", "; COMMIT"),
        ("", " -- trailing comment"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(secret=secrets, case=cases, context=around)
@example(secret=PREFIX + "o'ne", case=(STRING_STATEMENTS[2], "escaped"), context=("", ""))
def test_no_secret_survives_redaction_in_any_quoting_form(secret, case, context):
    template, form = case
    literal = EXPRESSION_FORMS[form](secret)
    assume(literal is not None)
    assert literal is not None
    text = context[0] + template.format(lit=literal) + context[1]
    redacted = redact_sql(text)
    for trace in traces(secret, literal):
        assert trace not in redacted, (text, redacted)
    assert redact_sql(redacted) == redacted  # idempotent: the migration relies on it
    # Still the same statements: the kept parts are PostgreSQL's, only literals changed.
    assert redacted != UNPARSEABLE and REDACTED_LITERAL in redacted


@settings(max_examples=300, deadline=None)
@given(secret=secrets, case=cases, cut=st.floats(0, 1))
def test_a_text_cut_anywhere_shows_no_part_of_the_secret(secret, case, cut):
    """pg_stat_activity cuts at track_activity_query_size bytes, mid-literal if need be."""
    template, form = case
    literal = EXPRESSION_FORMS[form](secret)
    assume(literal is not None and form not in ("hex", "bits"))
    text = template.format(lit=literal)
    text = text[: int(len(text) * cut)]
    assert PREFIX not in (redact_sql(text) or "")


@pytest.mark.parametrize(
    "text",
    [
        "SELECT id, email FROM accounts_user WHERE id = $1",  # normalized by pg_stat_statements
        "UPDATE core.automation SET config = $1 WHERE id = $2",
        "SELECT 'hello', 42, x'ff'",
        "VACUUM (ANALYZE) core.agent_session",
    ],
)
def test_statements_without_credentials_are_shown_as_they_are(text):
    assert redact_sql(text) == text


def test_the_portals_own_scram_verifiers_are_redacted():
    """What pg_stat_statements keeps from the role set-up (a verifier is a secret too)."""
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$Zq7stored:Zq7server"
    text = f"CREATE ROLE metabase_reader LOGIN PASSWORD '{verifier}' CONNECTION LIMIT 5"
    assert redact_sql(text) == (
        "CREATE ROLE metabase_reader LOGIN PASSWORD '********' CONNECTION LIMIT 5"
    )


def test_credentials_in_literals_and_comments_of_any_statement_are_replaced():
    text = (
        "SELECT http_get('https://bob:Zq7url@example.com/x') /* token=Zq7comment */, "
        "'Bearer Zq7bearer' -- password=Zq7line\n"
    )
    assert PREFIX not in redact_sql(text)
    assert redact_sql(text).startswith("SELECT http_get('********') /* ******** */, '********'")


def test_other_dialects_and_nul_characters_are_handled_conservatively():
    assert redact_sql("SHOW GRANTS FOR bob IDENTIFIED BY 'Zq7x' password") == UNPARSEABLE
    assert redact_sql("SELECT 1 FROM dual CONNECT BY PRIOR x = y") == (
        "SELECT 1 FROM dual CONNECT BY PRIOR x = y"
    )  # unparseable, nothing credential-like: shown
    assert PREFIX not in redact_sql("SELECT 1\x00; ALTER ROLE r PASSWORD 'Zq7nul'")


# --- End to end: real statements, read back where a Viewer or Metabase reads them ------

DB_FORMS = STRING_FORMS
# Secrets the server accepts everywhere (a conninfo value cannot hold every character).
db_secrets = st.text(alphabet=st.sampled_from(list("abcXYZ0189_-")), min_size=6, max_size=16).map(
    lambda t: PREFIX + t
)


@pytest.fixture(scope="module")
def probe_objects(django_db_setup, django_db_blocker):
    """A role, a foreign data wrapper and server to point credentials at (committed)."""
    role, fdw, server = unique("redact_role"), unique("redact_fdw"), unique("redact_srv")
    with django_db_blocker.unblock(), connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE FOREIGN DATA WRAPPER {}").format(sql.Identifier(fdw)))
        conn.execute(
            sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER {}").format(
                sql.Identifier(server), sql.Identifier(fdw)
            )
        )
    yield {"role": role, "fdw": fdw, "server": server}
    with django_db_blocker.unblock(), connect() as conn:
        conn.execute(sql.SQL("DROP SERVER {} CASCADE").format(sql.Identifier(server)))
        conn.execute(sql.SQL("DROP FOREIGN DATA WRAPPER {}").format(sql.Identifier(fdw)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def real_statements(objects: dict[str, str], literal: str) -> list[str]:
    # Names from unique() are plain lower-case identifiers; the literal is the point.
    role, server = f'"{objects["role"]}"', f'"{objects["server"]}"'
    return [
        f"ALTER ROLE {role} WITH PASSWORD {literal}",
        f"ALTER SERVER {server} OPTIONS (ADD host {literal})",
        f"CREATE USER MAPPING FOR {role} SERVER {server} OPTIONS (password {literal})",
        f"SELECT set_config('app.api_key', {literal}, false)",
    ]


def client_as(client, role: str, email: str):
    client.force_login(make_user(email, role))
    return client


def page(client, slug: str, **params) -> str:
    response = client.get(reverse(f"admin:diagnostics_{slug}"), params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.mark.django_db
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=db_secrets, form=st.sampled_from(sorted(DB_FORMS)))
def test_real_credentials_never_reach_a_page_or_a_snapshot(
    secret, form, probe_objects, client, django_user_model
):
    literal = DB_FORMS[form](secret)
    assume(literal is not None)
    assert literal is not None
    statements = real_statements(probe_objects, literal)
    with connect(application_name="redaction-probe") as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            sql.SQL("DROP USER MAPPING FOR {} SERVER {}").format(
                sql.Identifier(probe_objects["role"]), sql.Identifier(probe_objects["server"])
            )
        )
        conn.execute(
            sql.SQL("ALTER SERVER {} OPTIONS (DROP host)").format(
                sql.Identifier(probe_objects["server"])
            )
        )
        # The session stays idle with its last statement in pg_stat_activity.
        conn.execute(statements[0])
        pid = conn.info.backend_pid
        with connect() as watcher:
            wait_for(
                lambda: watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'idle'"
                    " AND query LIKE 'ALTER ROLE%%'",
                    (pid,),
                ).fetchone(),
                what="the probe session to be idle",
            )
        row = conn.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row is not None
        backend_start = row[0]
        conn.execute(statements[0])  # the query shown again is the ALTER ROLE

        viewer = client_as(client, VIEWER, f"viewer-{unique('v')}@example.com")
        shown = [
            page(viewer, "queries", q=probe_objects["role"]),
            page(viewer, "queries", q="set_config"),
            page(viewer, "queries", q=probe_objects["server"]),
            page(viewer, "activity"),
        ]
        assert f"ALTER ROLE \"{probe_objects['role']}\" WITH PASSWORD '********'" in shown[0]
        operator = client_as(client, OPERATOR, f"operator-{unique('o')}@example.com")
        confirm = operator.post(
            reverse("admin:diagnostics_signal"),
            {"kind": "cancel", "pid": pid, "backend_start": backend_start.isoformat()},
        )
        assert confirm.status_code == 200
        shown.append(html.unescape(confirm.content.decode()))
        assert "PASSWORD '********'" in shown[-1]
        # Confirmed: the audit entry of the action carries the session's query.
        operator.post(
            reverse("admin:diagnostics_signal"),
            {
                "kind": "cancel",
                "pid": pid,
                "backend_start": backend_start.isoformat(),
                "confirm": "yes",
            },
        )
        entry = ActivityLog.objects.filter(
            action="diagnostics.cancel_backend", resource_id=str(pid)
        ).latest("created_at")
        shown.append(json.dumps(entry.details))
        assert "PASSWORD '********'" in entry.details["query"]

        StatsSnapshot.objects.all().delete()
        call_command(
            "snapshot_stats",
            "--database",
            "default",
            "--min-interval",
            "0",
            "--top-queries",
            "100000",
            stdout=StringIO(),
        )
        stored = list(QueryStatSnapshot.objects.values_list("query", flat=True))
        assert any(probe_objects["role"] in q for q in stored)
        for text in [*shown, *stored]:
            for trace in traces(secret, literal):
                assert trace not in text


def test_searching_the_queries_page_cannot_spell_out_a_secret(client, db):
    """Search filters on the shown (redacted) text: a prefix of a password matches nothing."""
    role = unique("redact_search")
    with connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(PREFIX + "searchable")
                )
            )
            viewer = client_as(client, VIEWER, "searcher@example.com")
            assert role in page(viewer, "queries", q=role)
            assert role not in page(viewer, "queries", q=f"PASSWORD '{PREFIX}se")
            assert role not in page(viewer, "queries", q=PREFIX)
        finally:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_nul_in_the_search_is_a_message_not_a_server_error(client, db):
    viewer = client_as(client, VIEWER, "nul@example.com")
    text = page(viewer, "queries", q="\x00")
    assert "contains a NUL character" in text


@pytest.mark.django_db(transaction=True)
def test_the_migration_redacts_snapshot_rows_stored_before(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate([("diagnostics", "0001_initial")])
    try:
        snap = StatsSnapshot.objects.create(
            alias="default",
            database="portal",
            database_size_bytes=1,
            connections_total=1,
            connections_active=1,
            connections_idle=0,
            connections_idle_in_transaction=0,
            max_connections=10,
        )
        leaked = [
            f"ALTER ROLE app PASSWORD E'{PREFIX}e\\'scaped'",
            f"CREATE ROLE app PASSWORD $${PREFIX}dollar$$",
            f"ALTER USER app PASSWORD U&'{PREFIX}\\0075'",
            "SELECT id FROM core.project WHERE id = $1",
        ]
        for i, text in enumerate(leaked):
            QueryStatSnapshot.objects.create(
                snapshot=snap,
                queryid=i,
                query=text,
                calls=1,
                total_exec_time_ms=1.0,
                rows=0,
                calls_cumulative=1,
                total_exec_time_ms_cumulative=1.0,
            )
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    stored = list(QueryStatSnapshot.objects.order_by("queryid").values_list("query", flat=True))
    assert all(PREFIX not in text for text in stored)
    assert stored[3] == leaked[3]
    assert stored[0] == "ALTER ROLE app PASSWORD '********'"
    StatsSnapshot.objects.all().delete()
