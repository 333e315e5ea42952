"""``metabase_access --check``: log in as the Metabase role and try what it may and may not do.

Each check is a real attempt on a real connection (password authentication, the role's
own settings), not a reading of ACLs: the grants are the boundary, so the boundary is
what gets tested. Every attempt to change something runs in a transaction that is rolled
back whatever happens, UPDATE and DELETE carry ``WHERE false``, so a broken set-up is
reported, never exploited.

SQL here: catalog reads as named constants; statements naming tables and schemas built
with ``psycopg.sql.Identifier`` from names the catalog returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from dbroles import metabase
from dbroles.metabase import (
    FORBIDDEN_SCHEMAS,
    READABLE_RELKINDS,
    SCHEMAS,
    AccessConfig,
    AccessError,
    PasswordState,
    first_line,
    try_login,
)

PASS, FAIL, NOTE = "PASS", "FAIL", "note"
PROBE_NAME = "metabase_access_probe"

MEMBER_OF_SQL = """
SELECT rolname FROM pg_catalog.pg_roles
WHERE pg_has_role(current_user, oid, 'MEMBER') AND rolname <> current_user
ORDER BY 1
"""

ATTRIBUTES_SQL = """
SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
FROM pg_catalog.pg_roles WHERE rolname = current_user
"""

SETTINGS_SQL = """
SELECT name, setting FROM pg_catalog.pg_settings
WHERE name IN ('default_transaction_read_only', 'statement_timeout',
               'idle_in_transaction_session_timeout', 'search_path')
"""

# Relations of the given kinds in the given schemas, with a column an UPDATE may name
# (not generated, not GENERATED ALWAYS AS IDENTITY), if the relation has one.
RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       (SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '' AND a.attidentity <> 'a'
        ORDER BY a.attnum LIMIT 1) AS column_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
ORDER BY 1, 2
"""

# Every table outside the system schemas: writes must fail on all of them.
ALL_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       (SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '' AND a.attidentity <> 'a'
        ORDER BY a.attnum LIMIT 1) AS column_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
ORDER BY 1, 2
"""

SCHEMAS_SQL = """
SELECT nspname FROM pg_catalog.pg_namespace
WHERE nspname NOT LIKE 'pg\\_toast%%' AND nspname NOT LIKE 'pg\\_temp\\_%%'
ORDER BY 1
"""

EXISTING_SCHEMAS_SQL = """
SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(schemas)s)
"""

METADATA_TABLES_SQL = """
SELECT table_schema::text, table_name::text FROM information_schema.tables
WHERE table_schema = ANY(%(schemas)s)
"""

METADATA_COLUMNS_SQL = """
SELECT table_schema::text, table_name::text, count(*) FROM information_schema.columns
WHERE table_schema = ANY(%(schemas)s)
GROUP BY 1, 2
"""

STAT_STATEMENTS_SCHEMA_SQL = """
SELECT n.nspname FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

OTHER_ROLES_STATEMENTS_SQL = """
SELECT count(*) FILTER (WHERE query IS DISTINCT FROM '<insufficient privilege>'), count(*)
FROM {view}
WHERE userid <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
"""

OTHER_ROLES_ACTIVITY_SQL = """
SELECT count(*) FILTER (WHERE query IS DISTINCT FROM '<insufficient privilege>'), count(*)
FROM pg_catalog.pg_stat_activity
WHERE usesysid IS NOT NULL
  AND usesysid <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
"""

TEMP_PRIVILEGE_SQL = "SELECT has_database_privilege(current_database(), 'TEMPORARY')"


@dataclass(frozen=True)
class Result:
    status: str  # PASS, FAIL or note
    text: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.text}"


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    relkind: str
    column: str | None

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def failed(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status == FAIL]


def run_checks(params: dict[str, str], config: AccessConfig, password: str) -> list[Result]:
    """Log in as the login role with ``password`` and try everything; one Result per line."""
    conn, outcome = try_login(params, config.login_role, password, "metabase_access --check")
    if conn is None:
        state = f" ({outcome.sqlstate})" if outcome.sqlstate else ""
        return [
            Result(
                FAIL,
                f"cannot log in as {config.login_role}: {outcome.kind}{state}: "
                f"{outcome.detail}; fix: {_LOGIN_FIXES[outcome.kind]}",
            )
        ]
    with conn:
        results = [
            Result(
                PASS if conn.pgconn.used_password else FAIL,
                f"can log in as {config.login_role} ({_auth(conn)})",
            )
        ]
        for check in (
            _identity,
            _settings,
            _can_read,
            _metadata,
            _read_only_by_default,
            _cannot_write,
            _cannot_create,
            _cannot_read_forbidden,
            _no_dormant_grants,
            _cannot_write_large_objects,
            _cannot_read_server_files,
            _cannot_read_others_queries,
        ):
            results.extend(check(conn, config))
        return results


_LOGIN_FIXES = {
    "wrong password": "run `manage.py metabase_access` (it sets the password from "
    "METABASE_DB_PASSWORD when, and only when, the login says it is wrong)",
    "too many connections": "the role's CONNECTION LIMIT is reached: lower Metabase's pool "
    "(MB_JDBC_DATA_WAREHOUSE_MAX_CONNECTION_POOL_SIZE) or raise --connection-limit; the "
    "password was not touched",
    "unreachable": "the server did not answer this login (down, restarting, wrong "
    "host/port); the password was not touched",
    "refused": "the role may not log in (NOLOGIN, pg_hba.conf, or it does not exist): run "
    "`manage.py metabase_access`",
}


def catalog_findings(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    """What a run of the command would change, read on the command's own connection.

    One FAIL line per item (a privilege, membership, setting, PUBLIC grant the run would
    take back, something the roles own, a view over auth or audit) with the exact fix;
    the password is not part of it (the login checks test it).
    """
    try:
        plan = metabase.plan_grant(
            conn, config, password=None, password_state=PasswordState(needs_setting=False)
        )
    except AccessError as exc:
        return [Result(FAIL, f"{exc}")]
    results = [
        Result(FAIL, f"{c.summary}; fix: {(c.shown or c.statement).as_string(conn)};")
        for c in plan.changes
    ]
    for owned in metabase.read_owned(conn, [config.login_role, config.group_role]):
        if owned.large_object:
            fix = f"SELECT lo_unlink({owned.objid}); or metabase_watchdog / --drop-owned"
        elif owned.temporary:
            fix = "it ends with its session; metabase_watchdog ends sessions past the limits"
        else:
            fix = "metabase_access --drop-owned or --reassign-owned-to ROLE"
        results.append(Result(FAIL, f"{owned.role} owns {owned.label}; fix: {fix}"))
    for view in metabase.read_forbidden_dependents(conn):
        results.append(
            Result(
                FAIL,
                f"{view.label} is in {view.schema}, which Metabase reads; it is not granted. "
                f"fix: drop it or move it out of {', '.join(SCHEMAS)} "
                f"(ALTER {'MATERIALIZED VIEW' if view.relkind == 'm' else 'VIEW'} "
                f"{view.schema}.{view.name} SET SCHEMA <private schema>)",
            )
        )
    for (database,) in _rows(conn, metabase.PUBLIC_CONNECT_SQL):
        if database not in metabase.MAINTENANCE_DATABASES:
            results.append(
                Result(
                    NOTE,
                    f"PUBLIC may connect to database {database}, so {config.login_role} "
                    f"can log in there with PUBLIC's privileges; to close it: REVOKE CONNECT ON "
                    f"DATABASE {database} FROM PUBLIC and grant CONNECT to the roles that use it",
                )
            )
    if not results or all(r.status == NOTE for r in results):
        results.insert(
            0,
            Result(
                PASS,
                "the catalog is converged: no extra privilege, membership, setting, "
                "PUBLIC grant or owned object; no view over " + " or ".join(FORBIDDEN_SCHEMAS),
            ),
        )
    return results


def _auth(conn: psycopg.Connection) -> str:
    # libpq reports whether the server asked for the password, and whether TLS is on.
    auth = "password authentication" if conn.pgconn.used_password else "NO password asked"
    return f"{auth}, TLS {'on' if conn.pgconn.ssl_in_use else 'off'}"


def _rows(
    conn: psycopg.Connection, query: sql.SQL | sql.Composed | str, params=None
) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params or {})
        return cur.fetchall()


@contextmanager
def _rolled_back(conn: psycopg.Connection) -> Iterator[None]:
    with conn.transaction(force_rollback=True):
        yield


def _attempt(conn: psycopg.Connection, statement: sql.SQL | sql.Composed) -> Exception | None:
    """Run one statement in a transaction that is always rolled back; the error, if any."""
    try:
        with _rolled_back(conn):
            conn.execute(statement)
    except psycopg.Error as exc:
        return exc
    return None


def _relations(conn: psycopg.Connection, schemas, relkinds) -> list[Relation]:
    rows = _rows(conn, RELATIONS_SQL, {"schemas": list(schemas), "relkinds": list(relkinds)})
    return [Relation(*row) for row in rows]


def _identity(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    results = []
    member_of = [row[0] for row in _rows(conn, MEMBER_OF_SQL)]
    if member_of == [config.group_role]:
        results.append(Result(PASS, f"is a member of {config.group_role} only"))
    else:
        results.append(
            Result(
                FAIL,
                f"is a member of {', '.join(member_of) or 'nothing'}, "
                f"not of {config.group_role} only",
            )
        )
    attributes = _rows(conn, ATTRIBUTES_SQL)[0]
    names = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")
    held = [name for name, value in zip(names, attributes, strict=True) if value]
    if held:
        results.append(Result(FAIL, f"has role attributes {', '.join(held)}"))
    else:
        results.append(
            Result(PASS, "has no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS")
        )
    return results


def _settings(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    actual = dict(_rows(conn, SETTINGS_SQL))
    results = []
    for key, wanted in config.role_settings().items():
        value = actual.get(key)
        if value == wanted:
            results.append(Result(PASS, f"session starts with {key} = {wanted}"))
        else:
            results.append(Result(FAIL, f"session starts with {key} = {value}, not {wanted}"))
    return results


def _can_read(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    relations = _relations(conn, SCHEMAS, READABLE_RELKINDS)
    results = []
    for rel in relations:
        # A zero-row SELECT of every column: what Metabase's sync does; permissions are
        # checked when the executor starts, before any row.
        error = _attempt(conn, sql.SQL("SELECT * FROM {} LIMIT 0").format(rel.ident))
        if error is not None:
            results.append(Result(FAIL, f"cannot SELECT from {rel.label}: {first_line(error)}"))
    if not results:
        results.append(
            Result(
                PASS,
                f"can SELECT from all {len(relations)} tables and views in {', '.join(SCHEMAS)}",
            )
        )
    return results


def _metadata(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    # information_schema (SQL standard) has no materialized views; Metabase lists them
    # through the JDBC driver (pg_class), and their columns through pg_attribute.
    relations = _relations(conn, SCHEMAS, READABLE_RELKINDS)
    matviews = [r for r in relations if r.relkind == "m"]
    expected = {(r.schema, r.name) for r in relations if r.relkind != "m"}
    listed = set(_rows(conn, METADATA_TABLES_SQL, {"schemas": list(SCHEMAS)}))
    columns = {
        (s, t): n for s, t, n in _rows(conn, METADATA_COLUMNS_SQL, {"schemas": list(SCHEMAS)})
    }
    results = []
    if listed == expected:
        results.append(Result(PASS, f"information_schema.tables lists all {len(expected)} of them"))
    else:
        hidden = sorted(f"{s}.{t}" for s, t in expected - listed)
        results.append(Result(FAIL, f"information_schema.tables hides {', '.join(hidden)}"))
    no_columns = sorted(f"{s}.{t}" for s, t in expected if not columns.get((s, t)))
    if no_columns:
        results.append(
            Result(FAIL, f"information_schema.columns shows no column of {', '.join(no_columns)}")
        )
    else:
        results.append(Result(PASS, "information_schema.columns describes every one of them"))
    for rel in matviews:
        described = _rows(
            conn,
            "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = %(r)s::regclass "
            "AND attnum > 0 AND NOT attisdropped",
            {"r": _regclass(rel)},
        )[0][0]
        if not described:
            results.append(Result(FAIL, f"pg_attribute shows no column of {rel.label}"))
    if matviews:
        results.append(
            Result(
                PASS,
                f"{len(matviews)} materialized view(s) listed and described by pg_class and "
                "pg_attribute (information_schema has none)",
            )
        )
    return results


def _regclass(rel: Relation) -> str:
    return sql.Identifier(rel.schema, rel.name).as_string(None)


def _read_only_by_default(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    tables = _relations(conn, SCHEMAS, ("r", "p"))
    if not tables:
        return [Result(NOTE, "no table to try a write on")]
    target = tables[0]
    error = _attempt(conn, sql.SQL("DELETE FROM {} WHERE false").format(target.ident))
    if isinstance(error, errors.ReadOnlySqlTransaction):
        return [
            Result(
                PASS,
                f"a write is refused by default (read-only transaction: DELETE on {target.label})",
            )
        ]
    detail = first_line(error) if error else "it ran"
    return [Result(FAIL, f"a write is not refused as read-only by default ({detail})")]


def _write_statements(rel: Relation) -> list[tuple[str, sql.Composed]]:
    statements = [("INSERT", sql.SQL("INSERT INTO {} DEFAULT VALUES").format(rel.ident))]
    if rel.column:
        statements.append(
            (
                "UPDATE",
                sql.SQL("UPDATE {t} SET {c} = {c} WHERE false").format(
                    t=rel.ident, c=sql.Identifier(rel.column)
                ),
            )
        )
    statements.append(("DELETE", sql.SQL("DELETE FROM {} WHERE false").format(rel.ident)))
    if rel.relkind in ("r", "p"):
        statements.append(("TRUNCATE", sql.SQL("TRUNCATE {}").format(rel.ident)))
    return statements


def _expect_denied(
    conn: psycopg.Connection,
    attempts: Sequence[tuple[str, sql.SQL | sql.Composed]],
    results: list[Result],
) -> int:
    """Run each attempt; a FAIL for any that is not refused for lack of privilege."""
    for label, statement in attempts:
        error = _attempt(conn, statement)
        if error is None:
            results.append(Result(FAIL, f"could {label} (rolled back)"))
        elif not isinstance(error, errors.InsufficientPrivilege):
            results.append(
                Result(FAIL, f"{label} failed, but not for lack of privilege: {first_line(error)}")
            )
    return len(attempts)


def _cannot_write(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    # The guard rail is switched off first, as anyone may: the grants must hold on their own.
    conn.execute("SET default_transaction_read_only = off")
    try:
        tables = [Relation(*row) for row in _rows(conn, ALL_TABLES_SQL)]
        results: list[Result] = []
        attempts = [
            (f"{verb} {rel.label}", statement)
            for rel in tables
            for verb, statement in _write_statements(rel)
        ]
        count = _expect_denied(conn, attempts, results)
        if not results:
            results.append(
                Result(
                    PASS,
                    f"cannot INSERT, UPDATE, DELETE or TRUNCATE any of {len(tables)} "
                    f"tables ({count} attempts after SET default_transaction_read_only"
                    " = off, each refused: permission denied)",
                )
            )
        return results
    finally:
        conn.execute("RESET default_transaction_read_only")


def _cannot_create(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    conn.execute("SET default_transaction_read_only = off")
    try:
        schemas = [row[0] for row in _rows(conn, SCHEMAS_SQL)]
        attempts = [
            (
                f"CREATE TABLE in schema {schema}",
                sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(schema, PROBE_NAME)),
            )
            for schema in schemas
        ]
        attempts.append(
            ("CREATE SCHEMA", sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(PROBE_NAME)))
        )
        results: list[Result] = []
        _expect_denied(conn, attempts, results)
        if not results:
            results.append(
                Result(
                    PASS,
                    f"cannot CREATE in any of {len(schemas)} schemas "
                    f"({', '.join(schemas)}) nor CREATE SCHEMA",
                )
            )
        if _rows(conn, TEMP_PRIVILEGE_SQL)[0][0]:
            results.append(
                Result(
                    NOTE,
                    "can create TEMPORARY tables (PUBLIC's default TEMPORARY "
                    "privilege on the database; private to the session)",
                )
            )
        return results
    finally:
        conn.execute("RESET default_transaction_read_only")


def _cannot_read_forbidden(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    present = [
        r[0] for r in _rows(conn, EXISTING_SCHEMAS_SQL, {"schemas": list(FORBIDDEN_SCHEMAS)})
    ]
    results: list[Result] = []
    for schema in FORBIDDEN_SCHEMAS:
        if schema not in present:
            results.append(Result(NOTE, f"schema {schema} does not exist here"))
    relations = _relations(conn, present, READABLE_RELKINDS)
    attempts = [
        (f"SELECT from {rel.label}", sql.SQL("SELECT * FROM {} LIMIT 0").format(rel.ident))
        for rel in relations
    ]
    before = len(results)
    _expect_denied(conn, attempts, results)
    if len(results) == before:
        results.append(
            Result(
                PASS,
                f"cannot SELECT from any of {len(relations)} tables in "
                f"{', '.join(present) or 'no schema'} (permission denied)",
            )
        )
    return results


# Privileges on forbidden relations and schemas, whether or not they can be used now: a
# SELECT on auth.users without USAGE on auth is one GRANT USAGE away from a read.
DORMANT_SQL = """
SELECT c.oid::regclass::text, p.privilege
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                        'TRIGGER']) AS p(privilege)
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
  AND (CASE WHEN c.relkind = 'S' THEN p.privilege = 'SELECT'
                 AND has_sequence_privilege(c.oid, 'SELECT, USAGE, UPDATE')
            ELSE has_table_privilege(c.oid, p.privilege)
                 OR (p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                     AND has_any_column_privilege(c.oid, p.privilege)) END)
UNION ALL
SELECT n.nspname::text, p.privilege
FROM pg_catalog.pg_namespace n
CROSS JOIN unnest(ARRAY['USAGE', 'CREATE']) AS p(privilege)
WHERE n.nspname = ANY(%(schemas)s) AND has_schema_privilege(n.oid, p.privilege)
ORDER BY 1, 2
"""


def _no_dormant_grants(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    found = _rows(conn, DORMANT_SQL, {"schemas": list(FORBIDDEN_SCHEMAS)})
    if not found:
        return [
            Result(
                PASS,
                f"holds no privilege at all on {' or '.join(FORBIDDEN_SCHEMAS)} or anything in "
                "them (not even one unusable for lack of USAGE)",
            )
        ]
    return [
        Result(
            FAIL,
            f"holds {privilege} on {name} (through a grant to it, {config.group_role} or "
            "PUBLIC); fix: run `manage.py metabase_access`, which revokes it",
        )
        for name, privilege in found
    ]


def _cannot_write_large_objects(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    results = []
    for label, statement in (
        ("lo_from_bytea", "SELECT lo_from_bytea(0, '\\x00'::bytea)"),
        ("lo_create", "SELECT lo_create(0)"),
        ("lo_creat", "SELECT lo_creat(-1)"),
    ):
        try:
            with _rolled_back(conn):
                conn.execute("SET TRANSACTION READ WRITE")
                conn.execute(statement)
        except errors.InsufficientPrivilege:
            continue
        except psycopg.Error as exc:
            results.append(
                Result(FAIL, f"{label} failed, but not for lack of privilege: {first_line(exc)}")
            )
            continue
        results.append(
            Result(
                FAIL,
                f"can create a large object with {label} after SET TRANSACTION READ WRITE "
                "(rolled back); fix: run `manage.py metabase_access`, which revokes EXECUTE on "
                "it from PUBLIC",
            )
        )
    compat = _rows(conn, "SELECT current_setting('lo_compat_privileges')")[0][0]
    if compat == "on":
        results.append(
            Result(
                FAIL,
                "lo_compat_privileges is on: anyone may read and write every large object; "
                "fix: ALTER SYSTEM SET lo_compat_privileges = off (Cloud SQL: the database flag)",
            )
        )
    if not results:
        results.append(
            Result(
                PASS,
                "cannot create a large object even after SET TRANSACTION READ WRITE "
                "(lo_from_bytea, lo_create, lo_creat: permission denied)",
            )
        )
    return results


def _cannot_read_server_files(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    attempts: list[tuple[str, sql.SQL | sql.Composed]] = [
        (
            "pg_read_file of the configuration file",
            sql.SQL("SELECT pg_catalog.pg_read_file(current_setting('config_file'))"),
        ),
        ("pg_ls_dir", sql.SQL("SELECT pg_catalog.pg_ls_dir('.')")),
        ("COPY ... TO PROGRAM", sql.SQL("COPY (SELECT 1) TO PROGRAM 'true'")),
    ]
    extension = _rows(conn, STAT_STATEMENTS_SCHEMA_SQL)
    if extension:
        attempts.append(
            (
                "pg_stat_statements_reset",
                sql.SQL("SELECT {}()").format(
                    sql.Identifier(extension[0][0], "pg_stat_statements_reset")
                ),
            )
        )
    results: list[Result] = []
    _expect_denied(conn, attempts, results)
    if not results:
        names = ", ".join(label for label, _ in attempts)
        return [Result(PASS, f"cannot run {names} (permission denied)")]
    return [Result(r.status, f"{r.text}; fix: run `manage.py metabase_access`") for r in results]


def _cannot_read_others_queries(conn: psycopg.Connection, config: AccessConfig) -> list[Result]:
    results = []
    schema_rows = _rows(conn, STAT_STATEMENTS_SCHEMA_SQL)
    if not schema_rows:
        results.append(Result(NOTE, "pg_stat_statements is not installed in this database"))
    else:
        view = sql.Identifier(schema_rows[0][0], "pg_stat_statements")
        results.append(
            _count_check(
                conn,
                sql.SQL(OTHER_ROLES_STATEMENTS_SQL).format(view=view),
                "pg_stat_statements",
            )
        )
    results.append(_count_check(conn, OTHER_ROLES_ACTIVITY_SQL, "pg_stat_activity"))
    return results


def _count_check(conn: psycopg.Connection, query, what: str) -> Result:
    try:
        with _rolled_back(conn):
            readable, total = _rows(conn, query)[0]
    except errors.InsufficientPrivilege:
        return Result(PASS, f"cannot read {what} at all")
    if readable:
        return Result(FAIL, f"can read the query text of {readable} {what} rows of other roles")
    return Result(
        PASS,
        f"sees <insufficient privilege> for the query text of all {total} {what} "
        "rows of other roles",
    )
