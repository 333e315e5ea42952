"""Metabase's read-only access: two roles, their grants and settings, planned from the catalog.

The design (docs/metabase.md): a NOLOGIN group role holds the grants, a LOGIN
role for Metabase is its only membership. The group gets CONNECT on the database, USAGE
on ``analytics`` and ``core``, SELECT on every table and view in them, and default
privileges FOR the role that runs migrations, so tables created by later migrations are
readable without running anything again. Nothing in ``auth`` or ``audit``, never
``pg_read_all_data``.

How it works: :func:`plan_grant` and :func:`plan_revoke` read the catalog and return only
the statements needed to reach the wanted state (so a second run plans nothing, and the
printed plan is exactly what changed); :func:`apply` runs a plan in one transaction and
re-plans inside it to prove the state was reached. Privileges the two roles hold beyond
the wanted set (an INSERT someone granted, a membership in ``pg_read_all_data``) are part
of the plan too: they are revoked.

SQL here: catalog reads are named constants with ``%(name)s`` parameters; the DDL is built
with ``psycopg.sql`` (role, schema and database names through ``Identifier``). PostgreSQL
takes no parameters in ``ALTER ROLE ... SET``, ``CONNECTION LIMIT`` or ``PASSWORD``, so
those values go in as ``Literal``. The password never does: libpq turns it into a
SCRAM-SHA-256 verifier on the client (as psql's ``\\password`` does), so the clear text
reaches neither the server's statement logs nor pg_stat_statements, and printed SQL shows
a placeholder instead.

Role settings are set on the login role for every database (``ALTER ROLE ... SET``), not
``IN DATABASE``: PUBLIC may CONNECT to every database by default, and the guard rails
must follow the role wherever it logs in. Per-database overrides of the same settings in
this database would win over them, so they are reset.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

# The schemas Metabase reads, in search_path order; and the ones it must never reach.
SCHEMAS: tuple[str, ...] = ("analytics", "core")
FORBIDDEN_SCHEMAS: tuple[str, ...] = ("auth", "audit")
# Relation kinds SELECT is granted on: table, view, materialized view, foreign table,
# partitioned table (what GRANT ... ON ALL TABLES IN SCHEMA covers).
READABLE_RELKINDS: tuple[str, ...] = ("r", "v", "m", "f", "p")

DEFAULT_GROUP_ROLE = "bi_readonly"
DEFAULT_LOGIN_ROLE = "metabase_readonly"
DEFAULT_CONNECTION_LIMIT = 20
DEFAULT_STATEMENT_TIMEOUT = "60s"
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = "60s"

PASSWORD_ENV = "METABASE_DB_PASSWORD"  # noqa: S105 - the variable's name
PASSWORD_PLACEHOLDER = sql.SQL(":'metabase_password'")  # a psql variable

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_RESERVED_ROLE_NAMES = {"public", "none", "current_role", "current_user", "session_user"}
_DURATION = re.compile(r"\s*(\d+)\s*(ms|s|min|h)?\s*")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
_INT4_MAX = 2**31 - 1

# Privilege keywords as aclexplode() reports them; only these are ever put into SQL.
_PRIVILEGES = {
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "MAINTAIN",
    "USAGE",
    "CREATE",
    "CONNECT",
    "TEMPORARY",
    "EXECUTE",
}
# pg_default_acl.defaclobjtype -> the object class keyword of ALTER DEFAULT PRIVILEGES.
_DEFAULT_ACL_OBJECTS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
    "L": "LARGE OBJECTS",
}
_ROLE_ATTRIBUTES = {
    # pg_roles column -> (keyword when true, keyword when false)
    "rolcanlogin": ("LOGIN", "NOLOGIN"),
    "rolsuper": ("SUPERUSER", "NOSUPERUSER"),
    "rolcreatedb": ("CREATEDB", "NOCREATEDB"),
    "rolcreaterole": ("CREATEROLE", "NOCREATEROLE"),
    "rolreplication": ("REPLICATION", "NOREPLICATION"),
    "rolbypassrls": ("BYPASSRLS", "NOBYPASSRLS"),
    "rolinherit": ("INHERIT", "NOINHERIT"),
}


class AccessError(Exception):
    """Bad configuration or a state this module refuses to touch; one line, shown as is."""


# ---------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class AccessConfig:
    group_role: str = DEFAULT_GROUP_ROLE
    login_role: str = DEFAULT_LOGIN_ROLE
    migration_role: str = ""  # "" = the current user of the connection
    connection_limit: int = DEFAULT_CONNECTION_LIMIT
    statement_timeout_ms: int = 60_000
    idle_in_transaction_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        for what, name in (("group role", self.group_role), ("login role", self.login_role)):
            validate_role_name(name, what)
        if self.group_role == self.login_role:
            raise AccessError("the group role and the login role must be two different roles")
        if not 1 <= self.connection_limit <= 10_000:
            raise AccessError(
                f"connection limit must be between 1 and 10000, not {self.connection_limit}"
            )

    def role_settings(self) -> dict[str, str]:
        """The login role's settings, as pg_db_role_setting stores them."""
        return {
            "default_transaction_read_only": "on",
            "statement_timeout": str(self.statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
            # SCHEMAS are plain lower-case names, so PostgreSQL stores them unquoted.
            "search_path": ", ".join(SCHEMAS),
        }


def validate_role_name(name: str, what: str = "role") -> str:
    if not _ROLE_NAME.fullmatch(name) or len(name.encode()) > 63:
        raise AccessError(
            f"{what} {name!r} is not a plain role name "
            "(lower-case letters, digits and _, at most 63 characters)"
        )
    if name.startswith("pg_") or name in _RESERVED_ROLE_NAMES:
        raise AccessError(f"{what} {name!r} is reserved by PostgreSQL")
    return name


def parse_duration_ms(value: str, what: str) -> int:
    """'60s', '5min', '1500ms', '2h' or a number of milliseconds -> milliseconds (> 0)."""
    match = _DURATION.fullmatch(str(value))
    if not match:
        raise AccessError(f"{what} {value!r} is not a duration like 60s, 5min, 1500ms or 2h")
    ms = int(match.group(1)) * _UNIT_MS[match.group(2) or "ms"]
    if not 0 < ms <= _INT4_MAX:
        raise AccessError(f"{what} must be more than 0 and at most {_INT4_MAX} ms, not {value!r}")
    return ms


# ---------------------------------------------------------------------------------------
# Plans


@dataclass(frozen=True)
class Change:
    """One statement of a plan and the line that says what it changes."""

    summary: str
    # Not any Composable: what psycopg's execute() is typed to take.
    statement: sql.SQL | sql.Composed
    # What --dry-run prints when it differs from the statement (the password).
    shown: sql.Composable | None = None


@dataclass
class Plan:
    database: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, summary: str, statement: sql.SQL | sql.Composed, shown: sql.Composable | None = None
    ) -> None:
        self.changes.append(Change(summary, statement, shown))


def render(plan: Plan, conn: psycopg.Connection, *, header: list[str]) -> str:
    """The plan as a psql script, password replaced by the ``metabase_password`` variable."""
    lines = [f"-- {line}" if line else "--" for line in header]
    lines += [f"-- note: {note}" for note in plan.notes]
    if not plan.changes:
        lines.append("-- nothing to do")
        return "\n".join(lines) + "\n"
    lines.append("BEGIN;")
    for change in plan.changes:
        lines.append(f"-- {change.summary}")
        lines.append((change.shown or change.statement).as_string(conn) + ";")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Catalog reads

ROLES_SQL = """
SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
       r.rolreplication, r.rolbypassrls, r.rolconnlimit,
       (SELECT count(*) FROM pg_catalog.pg_shdepend d
        WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = r.oid
          AND d.deptype = 'o') AS owned_objects
FROM pg_catalog.pg_roles r
WHERE r.rolname = ANY(%(names)s)
"""

# inherit_option exists from PostgreSQL 16; before that a member inherits when its own
# rolinherit is set. to_jsonb() reads the column when present without a version switch.
MEMBERSHIPS_SQL = """
SELECT m.rolname AS member, r.rolname AS role,
       bool_or(am.admin_option) AS admin_option,
       bool_or(COALESCE((to_jsonb(am) ->> 'inherit_option')::boolean, m.rolinherit)) AS inherits
FROM pg_catalog.pg_auth_members am
JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
JOIN pg_catalog.pg_roles m ON m.oid = am.member
WHERE m.rolname = ANY(%(names)s)
GROUP BY m.rolname, r.rolname
ORDER BY 1, 2
"""

ROLE_SETTINGS_SQL = """
SELECT s.setdatabase <> 0 AS in_database, cfg
FROM pg_catalog.pg_db_role_setting s
CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(role)s)
  AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                            WHERE datname = current_database()))
"""

# Every privilege the given roles hold directly in this database: on the database itself,
# schemas, relations, columns, and default privileges.
PRIVILEGES_SQL = """
WITH grantee AS (
    SELECT oid, rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%(names)s)
)
SELECT 'database' AS kind, NULL::text AS schema, d.datname::text AS name,
       NULL::text AS column_name, NULL::text AS for_role, NULL::text AS objtype,
       g.rolname::text AS grantee, a.privilege_type::text AS privilege, a.is_grantable
FROM pg_catalog.pg_database d
CROSS JOIN LATERAL aclexplode(d.datacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE d.datname = current_database()
UNION ALL
SELECT 'schema', n.nspname, n.nspname, NULL, NULL, NULL, g.rolname, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL aclexplode(n.nspacl) a
JOIN grantee g ON g.oid = a.grantee
UNION ALL
SELECT 'relation', n.nspname, c.relname, NULL, NULL, c.relkind::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
JOIN grantee g ON g.oid = a.grantee
UNION ALL
SELECT 'column', n.nspname, c.relname, att.attname, NULL, c.relkind::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_attribute att
JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(att.attacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE att.attacl IS NOT NULL AND NOT att.attisdropped
UNION ALL
SELECT 'default', n.nspname, NULL, NULL, owner.rolname, da.defaclobjtype::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_default_acl da
JOIN pg_catalog.pg_roles owner ON owner.oid = da.defaclrole
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = da.defaclnamespace
CROSS JOIN LATERAL aclexplode(da.defaclacl) a
JOIN grantee g ON g.oid = a.grantee
"""

SCHEMAS_SQL = """
SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(schemas)s)
"""

READABLE_RELATIONS_SQL = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
ORDER BY 1, 2
"""

# On PostgreSQL < 15 every role may CREATE in public; 15 took that away, but a database
# upgraded from an older version keeps its old ACL, so the catalog decides, not the version.
PUBLIC_CREATE_ON_PUBLIC_SQL = """
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_namespace n
    CROSS JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
    WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'
)
"""

SESSION_SQL = """
SELECT current_database(), current_user, current_setting('server_version_num')::int
"""

ROLE_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %(name)s)"

# Everything that ties a role to an object (pg_shdepend), with where it lives: "here" (this
# database), "shared" (a shared catalog: databases, tablespaces) or "other" (another
# database, named). DROP ROLE fails while any of these remains.
DEPENDENCIES_SQL = """
SELECT CASE WHEN d.dbid = 0 THEN 'shared'
            WHEN db.datname = current_database() THEN 'here'
            ELSE 'other' END AS location,
       db.datname::text AS database,
       d.deptype::text,
       d.classid::regclass::text AS catalog,
       CASE WHEN d.dbid = 0 OR db.datname = current_database()
            THEN pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END AS object,
       d.classid = 'pg_catalog.pg_database'::regclass
           AND d.objid = (SELECT oid FROM pg_catalog.pg_database
                          WHERE datname = current_database()) AS is_this_database
FROM pg_catalog.pg_shdepend d
LEFT JOIN pg_catalog.pg_database db ON db.oid = d.dbid
WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass
  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(role)s)
"""

MEMBERS_OF_SQL = """
SELECT m.rolname FROM pg_catalog.pg_auth_members am
JOIN pg_catalog.pg_roles m ON m.oid = am.member
WHERE am.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(role)s)
  AND m.rolname <> ALL(%(except)s)
ORDER BY 1
"""


@dataclass(frozen=True)
class Role:
    name: str
    attributes: dict[str, bool]
    connection_limit: int
    owned_objects: int


@dataclass(frozen=True)
class Membership:
    member: str
    role: str
    admin_option: bool
    inherits: bool


@dataclass(frozen=True)
class Privilege:
    """One aclexplode() row: ``grantee`` holds ``privilege`` on an object."""

    kind: str  # database | schema | relation | column | default
    schema: str | None
    name: str | None
    column: str | None
    for_role: str | None  # default privileges: the role whose new objects they cover
    objtype: str | None  # relkind, or defaclobjtype
    grantee: str
    privilege: str
    grantable: bool


@dataclass(frozen=True)
class Session:
    database: str
    current_user: str
    server_version_num: int


def _rows(conn: psycopg.Connection, query: str, params: dict | None = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params or {})
        return cur.fetchall()


def read_session(conn: psycopg.Connection) -> Session:
    database, user, version = _rows(conn, SESSION_SQL)[0]
    return Session(database, user, version)


def read_roles(conn: psycopg.Connection, names: list[str]) -> dict[str, Role]:
    roles = {}
    for row in _rows(conn, ROLES_SQL, {"names": names}):
        name, attrs = row[0], row[1:8]
        keys = (
            "rolsuper",
            "rolinherit",
            "rolcreaterole",
            "rolcreatedb",
            "rolcanlogin",
            "rolreplication",
            "rolbypassrls",
        )
        roles[name] = Role(name, dict(zip(keys, attrs, strict=True)), row[8], row[9])
    return roles


def read_memberships(conn: psycopg.Connection, names: list[str]) -> list[Membership]:
    return [Membership(*row) for row in _rows(conn, MEMBERSHIPS_SQL, {"names": names})]


def read_role_settings(
    conn: psycopg.Connection, role: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings for every database, settings for this database only) of ``role``."""
    everywhere: dict[str, str] = {}
    here: dict[str, str] = {}
    for in_database, cfg in _rows(conn, ROLE_SETTINGS_SQL, {"role": role}):
        key, _, value = cfg.partition("=")
        (here if in_database else everywhere)[key] = value
    return everywhere, here


_KIND_ORDER = {"database": 0, "schema": 1, "relation": 2, "column": 3, "default": 4}


def read_privileges(conn: psycopg.Connection, names: list[str]) -> list[Privilege]:
    rows = [Privilege(*row) for row in _rows(conn, PRIVILEGES_SQL, {"names": names})]
    return sorted(
        rows,
        key=lambda p: (
            _KIND_ORDER[p.kind],
            p.grantee,
            p.for_role or "",
            p.schema or "",
            p.name or "",
            p.column or "",
            p.privilege,
        ),
    )


def read_readable_relations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return _rows(
        conn,
        READABLE_RELATIONS_SQL,
        {"schemas": list(SCHEMAS), "relkinds": list(READABLE_RELKINDS)},
    )


# ---------------------------------------------------------------------------------------
# Statements


def _id(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _part(value: str | None) -> str:
    """A name that the catalog query returns for this kind of privilege (never NULL)."""
    assert value is not None, "catalog row without a name for its kind of privilege"
    return value


def _keyword(word: str) -> sql.SQL:
    if word not in _PRIVILEGES:
        raise AccessError(f"unexpected privilege {word!r} in the catalog")
    return sql.SQL(word)


def _object_ref(p: Privilege) -> tuple[sql.Composable, str]:
    """(SQL naming the object of a privilege, its name for people)."""
    if p.kind == "database":
        return sql.SQL("DATABASE {}").format(_id(_part(p.name))), f"database {p.name}"
    if p.kind == "schema":
        return sql.SQL("SCHEMA {}").format(_id(_part(p.name))), f"schema {p.name}"
    kind = "SEQUENCE" if p.objtype == "S" else "TABLE"
    return (
        sql.SQL(kind + " {}").format(_id(_part(p.schema), _part(p.name))),
        f"{p.schema}.{p.name}",
    )


def _revoke(p: Privilege, *, only_grant_option: bool = False) -> Change:
    """The statement that takes one privilege (or only its grant option) away."""
    what = _keyword(p.privilege)
    prefix = sql.SQL("REVOKE GRANT OPTION FOR ") if only_grant_option else sql.SQL("REVOKE ")
    label = f"grant option of {p.privilege}" if only_grant_option else p.privilege
    if p.kind == "default":
        objects = _DEFAULT_ACL_OBJECTS.get(p.objtype or "")
        if objects is None:
            raise AccessError(f"unexpected default-privilege object type {p.objtype!r}")
        scope = sql.SQL(" IN SCHEMA {}").format(_id(p.schema)) if p.schema else sql.SQL("")
        statement = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {owner}{scope} ").format(
            owner=_id(_part(p.for_role)), scope=scope
        ) + sql.SQL("{prefix}{what} ON {objects} FROM {grantee}").format(
            prefix=prefix, what=what, objects=sql.SQL(objects), grantee=_id(p.grantee)
        )
        where = f" in schema {p.schema}" if p.schema else ""
        summary = (
            f"revoke default {label} on {objects.lower()} created by {p.for_role}{where} "
            f"from {p.grantee}"
        )
        return Change(summary, statement)
    if p.kind == "column":
        target: sql.Composable = sql.SQL("TABLE {}").format(_id(_part(p.schema), _part(p.name)))
        statement = sql.SQL("{prefix}{what} ({column}) ON {target} FROM {grantee}").format(
            prefix=prefix,
            what=what,
            column=_id(_part(p.column)),
            target=target,
            grantee=_id(p.grantee),
        )
        summary = f"revoke {label} on column {p.schema}.{p.name}.{p.column} from {p.grantee}"
        return Change(summary, statement)
    target, label_obj = _object_ref(p)
    statement = sql.SQL("{prefix}{what} ON {target} FROM {grantee}").format(
        prefix=prefix, what=what, target=target, grantee=_id(p.grantee)
    )
    return Change(f"revoke {label} on {label_obj} from {p.grantee}", statement)


def password_verifier(conn: psycopg.Connection, role: str, password: str) -> sql.Composable:
    """A SCRAM-SHA-256 verifier of ``password`` for ``role``, computed by libpq here.

    PostgreSQL stores a verifier sent in place of a password as it is, so the server sees
    no clear text (psql's ``\\password`` does the same).
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    return sql.Literal(verifier.decode())


def _set_setting(role: str, key: str, value: str) -> sql.Composed:
    rendered: sql.Composable
    if key == "search_path":
        rendered = sql.SQL(", ").join(_id(s) for s in value.split(", "))
    elif key == "default_transaction_read_only":
        rendered = sql.SQL("on" if value == "on" else "off")
    else:
        rendered = sql.Literal(int(value))
    return sql.SQL("ALTER ROLE {role} SET {key} = {value}").format(
        role=_id(role), key=_id(key), value=rendered
    )


# ---------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True)
class PasswordState:
    """What is known about the login role's current password."""

    needs_setting: bool
    reason: str = ""


def plan_grant(
    conn: psycopg.Connection,
    config: AccessConfig,
    *,
    password: str | None,
    password_state: PasswordState | None,
) -> Plan:
    """The statements that bring both roles to the wanted state (none if already there).

    ``password`` None means: do not set it (dry run); the plan then shows the placeholder
    wherever a password is needed. ``password_state`` says whether an existing login
    role's password must be set again (None: unknown, do not touch it).
    """
    session = read_session(conn)
    plan = Plan(database=session.database)
    group, login = config.group_role, config.login_role
    names = [group, login]
    migrator = config.migration_role or session.current_user

    if session.current_user in names:
        raise AccessError(
            f"the command runs as {session.current_user!r}, one of the roles it manages; "
            "run it as the role that owns the tables"
        )
    if migrator in names:
        raise AccessError(f"the migration role {migrator!r} cannot be a Metabase role")
    if not _rows(conn, ROLE_EXISTS_SQL, {"name": migrator})[0][0]:
        raise AccessError(f"migration role {migrator!r} does not exist")
    present = {row[0] for row in _rows(conn, SCHEMAS_SQL, {"schemas": list(SCHEMAS)})}
    missing = [s for s in SCHEMAS if s not in present]
    if missing:
        raise AccessError(
            f"schema {', '.join(missing)} does not exist in database {session.database}: "
            "run `manage.py migrate` first"
        )

    roles = read_roles(conn, names)
    for role in roles.values():
        if role.attributes["rolsuper"]:
            raise AccessError(
                f"role {role.name!r} exists and is a superuser; refusing to manage it"
            )
        if role.owned_objects:
            raise AccessError(
                f"role {role.name!r} exists and owns {role.owned_objects} object(s); it looks "
                "like an application role, refusing to manage it"
            )

    _plan_roles(conn, plan, config, roles, password, password_state)
    _plan_memberships(conn, plan, config, roles, session)
    _plan_settings(conn, plan, config, roles)
    _plan_privileges(conn, plan, config, migrator, session)
    return plan


def _plan_roles(
    conn: psycopg.Connection,
    plan: Plan,
    config: AccessConfig,
    roles: dict[str, Role],
    password: str | None,
    password_state: PasswordState | None,
) -> None:
    group, login = config.group_role, config.login_role
    if group not in roles:
        plan.add(
            f"create role {group} (NOLOGIN, holds the grants)",
            sql.SQL("CREATE ROLE {} NOLOGIN").format(_id(group)),
        )
    else:
        _plan_attributes(plan, roles[group], {"rolcanlogin": False})

    def with_password(template: str) -> tuple[sql.Composed, sql.Composable]:
        """(statement to run, statement to show) with the verifier or the placeholder."""
        args = {"role": _id(login), "limit": sql.Literal(config.connection_limit)}
        shown = sql.SQL(template).format(**args, password=PASSWORD_PLACEHOLDER)
        if password is None:
            return shown, shown
        verifier = password_verifier(conn, login, password)
        return sql.SQL(template).format(**args, password=verifier), shown

    if login not in roles:
        statement, shown = with_password(
            "CREATE ROLE {role} LOGIN INHERIT CONNECTION LIMIT {limit} PASSWORD {password}"
        )
        plan.add(
            f"create role {login} (LOGIN, connection limit {config.connection_limit}, "
            f"password from {PASSWORD_ENV})",
            statement,
            shown,
        )
        return
    role = roles[login]
    _plan_attributes(plan, role, {"rolcanlogin": True, "rolinherit": True})
    if role.connection_limit != config.connection_limit:
        plan.add(
            f"set connection limit of {login} to {config.connection_limit} "
            f"(was {role.connection_limit})",
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                _id(login), sql.Literal(config.connection_limit)
            ),
        )
    if password_state is None:
        plan.notes.append(
            f"the password of existing role {login} was not checked ({PASSWORD_ENV} unset)"
        )
    elif password_state.needs_setting:
        statement, shown = with_password("ALTER ROLE {role} PASSWORD {password}")
        plan.add(
            f"set the password of {login} from {PASSWORD_ENV} ({password_state.reason})",
            statement,
            shown,
        )


def _plan_attributes(plan: Plan, role: Role, overrides: dict[str, bool]) -> None:
    """Switch off every privileged attribute, LOGIN and INHERIT as ``overrides`` say."""
    wanted = {
        "rolcanlogin": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolreplication": False,
        "rolbypassrls": False,
        **overrides,
    }
    keywords = [
        _ROLE_ATTRIBUTES[attr][0 if value else 1]
        for attr, value in wanted.items()
        if role.attributes[attr] != value
    ]
    if keywords:
        plan.add(
            f"set {' '.join(keywords)} on role {role.name}",
            sql.SQL("ALTER ROLE {} ").format(_id(role.name)) + sql.SQL(" ".join(keywords)),
        )


def _plan_memberships(
    conn: psycopg.Connection,
    plan: Plan,
    config: AccessConfig,
    roles: dict[str, Role],
    session: Session,
) -> None:
    group, login = config.group_role, config.login_role
    found = {(m.member, m.role): m for m in read_memberships(conn, [group, login])}
    # Only the login role's membership of the group; any other membership (say
    # pg_read_all_data, or cloudsqlsuperuser for a user made by gcloud) is revoked.
    for member, role in sorted(found):
        if (member, role) != (login, group):
            plan.add(
                f"revoke membership of {member} in {role}",
                sql.SQL("REVOKE {} FROM {}").format(_id(role), _id(member)),
            )
    current = found.get((login, group))
    if current is None:
        plan.add(
            f"grant {group} to {login}",
            sql.SQL("GRANT {} TO {}").format(_id(group), _id(login)),
        )
        return
    if current.admin_option:
        plan.add(
            f"revoke admin option on {group} from {login}",
            sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(_id(group), _id(login)),
        )
    # Before 16 inheritance is the member's rolinherit, which _plan_roles sets.
    if not current.inherits and session.server_version_num >= 160000:
        plan.add(
            f"make {login} inherit the privileges of {group}",
            sql.SQL("GRANT {} TO {} WITH INHERIT TRUE").format(_id(group), _id(login)),
        )


def _plan_settings(
    conn: psycopg.Connection, plan: Plan, config: AccessConfig, roles: dict[str, Role]
) -> None:
    login = config.login_role
    everywhere, here = read_role_settings(conn, login) if login in roles else ({}, {})
    for key, value in config.role_settings().items():
        if everywhere.get(key) != value:
            unit = " ms" if key.endswith("timeout") else ""
            was = f" (was {everywhere[key]})" if key in everywhere else ""
            plan.add(f"set {key} = {value}{unit} for {login}{was}", _set_setting(login, key, value))
        if key in here:
            plan.add(
                f"reset {key} = {here[key]} set for {login} in database {plan.database} only",
                sql.SQL("ALTER ROLE {} IN DATABASE {} RESET {}").format(
                    _id(login), _id(plan.database), _id(key)
                ),
            )


def _wanted_privilege(p: Privilege, config: AccessConfig, migrator: str, database: str) -> bool:
    """Is this (non-grantable) privilege one the group role should hold?"""
    if p.grantee != config.group_role:
        return False  # the login role holds nothing itself
    if p.kind == "database":
        return p.name == database and p.privilege == "CONNECT"
    if p.kind == "schema":
        return p.name in SCHEMAS and p.privilege == "USAGE"
    if p.kind == "relation":
        return p.schema in SCHEMAS and p.objtype in READABLE_RELKINDS and p.privilege == "SELECT"
    if p.kind == "default":
        return (
            p.for_role == migrator
            and p.schema in SCHEMAS
            and p.objtype == "r"
            and p.privilege == "SELECT"
        )
    return False


def _plan_privileges(
    conn: psycopg.Connection,
    plan: Plan,
    config: AccessConfig,
    migrator: str,
    session: Session,
) -> None:
    group = config.group_role
    held = read_privileges(conn, [group, config.login_role])

    # First take away what is not wanted, so nothing extra survives a run.
    for p in held:
        if not _wanted_privilege(p, config, migrator, session.database):
            plan.changes.append(_revoke(p))
        elif p.grantable:
            plan.changes.append(_revoke(p, only_grant_option=True))

    have = {
        (p.kind, p.schema, p.name, p.for_role)
        for p in held
        if _wanted_privilege(p, config, migrator, session.database)
    }
    if ("database", None, session.database, None) not in have:
        plan.add(
            f"grant CONNECT on database {session.database} to {group}",
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_id(session.database), _id(group)),
        )

    if _rows(conn, PUBLIC_CREATE_ON_PUBLIC_SQL)[0][0]:
        plan.add(
            "revoke CREATE on schema public from PUBLIC (the default before PostgreSQL 15)",
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        )

    for schema in SCHEMAS:
        if ("schema", schema, schema, None) not in have:
            plan.add(
                f"grant USAGE on schema {schema} to {group}",
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_id(schema), _id(group)),
            )

    missing: dict[str, list[str]] = defaultdict(list)
    for schema, name in read_readable_relations(conn):
        if ("relation", schema, name, None) not in have:
            missing[schema].append(name)
    for schema, names in missing.items():
        shown = ", ".join(f"{schema}.{n}" for n in names)
        plan.add(
            f"grant SELECT on {shown} to {group}",
            sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(
                sql.SQL(", ").join(_id(schema, n) for n in names), _id(group)
            ),
        )

    for schema in SCHEMAS:
        if ("default", schema, None, migrator) not in have:
            plan.add(
                f"let {group} read the tables {migrator} creates in {schema} from now on "
                "(default privileges)",
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
                ).format(_id(migrator), _id(schema), _id(group)),
            )


def plan_revoke(conn: psycopg.Connection, config: AccessConfig) -> Plan:
    """Revoke every privilege both roles hold in this database, then drop them.

    A role that still holds privileges in another database is kept (dropping it would
    fail); run ``--revoke`` there too. Ownership of anything, or privileges here that
    this module does not manage (functions, types...), stop the revoke before it starts.
    The PUBLIC CREATE on ``public`` taken away on old PostgreSQL versions is not given back.
    """
    session = read_session(conn)
    plan = Plan(database=session.database)
    names = [config.login_role, config.group_role]
    if session.current_user in names:
        raise AccessError(f"the command runs as {session.current_user!r}, a role it would drop")
    roles = read_roles(conn, names)
    for role in roles.values():
        if role.attributes["rolsuper"]:
            raise AccessError(f"role {role.name!r} is a superuser; refusing to drop it")

    for p in read_privileges(conn, names):
        plan.changes.append(_revoke(p))

    # Privileges of the kinds read_privileges() covers, which the revokes above remove.
    revoked_here = {"pg_class", "pg_namespace", "pg_default_acl"}
    for name in names:  # login role first: it is a member of the group
        if name not in roles:
            continue
        elsewhere: set[str] = set()
        blockers: list[str] = []
        for location, database, deptype, catalog, obj, is_this_database in _rows(
            conn, DEPENDENCIES_SQL, {"role": name}
        ):
            if deptype == "a" and (
                is_this_database or (location == "here" and catalog in revoked_here)
            ):
                continue
            if deptype == "a" and location == "other":
                elsewhere.add(f"database {database}")
            elif deptype == "a" and catalog == "pg_database":
                elsewhere.add(obj)  # CONNECT etc. on another database
            elif location == "other":
                blockers.append(f"objects in database {database}")
            else:
                blockers.append(obj)
        if blockers:
            raise AccessError(
                f"role {name!r} cannot be dropped: it owns or holds privileges on "
                f"{'; '.join(sorted(set(blockers)))}; revoke or reassign those first"
            )
        if elsewhere:
            plan.notes.append(
                f"role {name} kept: it still holds privileges on {', '.join(sorted(elsewhere))}"
                " (run --revoke there too)"
            )
            continue
        others = [row[0] for row in _rows(conn, MEMBERS_OF_SQL, {"role": name, "except": names})]
        extra = f" (its other members lose it: {', '.join(others)})" if others else ""
        plan.add(f"drop role {name}{extra}", sql.SQL("DROP ROLE {}").format(_id(name)))
    return plan


# ---------------------------------------------------------------------------------------
# Running


def apply(conn: psycopg.Connection, plan: Plan) -> None:
    """Run the plan's statements on ``conn``; the caller holds the transaction."""
    with conn.cursor() as cur:
        for change in plan.changes:
            cur.execute(change.statement)


def login_params(conn: psycopg.Connection) -> dict[str, str]:
    """Connection parameters of ``conn`` (host, port, database, TLS), without its identity.

    The application's ``options`` (say ``-c search_path=...``) are dropped too: Metabase
    connects without them, so a check must see the role's own settings. So is its
    ``connect_timeout`` (the settings set one): the logins made from these parameters
    pass their own.
    """
    params = dict(conn.info.get_parameters())
    for key in (
        "user",
        "password",
        "passfile",
        "options",
        "application_name",
        "service",
        "connect_timeout",
    ):
        params.pop(key, None)
    return params


def probe_password(params: dict[str, str], role: str, password: str) -> PasswordState:
    """Log in as ``role``: does the current password still work?"""
    try:
        with psycopg.connect(
            # libpq parameters (all str): none can be one of connect()'s own keyword
            # arguments (autocommit, row_factory, ...), which mypy cannot know.
            **params,  # type: ignore[arg-type]
            user=role,
            password=password,
            connect_timeout=10,
            application_name="metabase_access",
        ):
            return PasswordState(needs_setting=False)
    except psycopg.OperationalError as exc:
        return PasswordState(needs_setting=True, reason=f"login failed: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    """The meaningful line of a libpq/server error, without the 'connection failed' prefix."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        for marker in ("FATAL:", "ERROR:"):
            if marker in line:
                return line.split(marker, 1)[1].strip()
    return lines[0] if lines else type(exc).__name__
