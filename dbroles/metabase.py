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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psycopg
from django.utils.translation import gettext
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
    "SET",
    "ALTER SYSTEM",
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
        for what, name in (
            (gettext("group role"), self.group_role),
            (gettext("login role"), self.login_role),
        ):
            validate_role_name(name, what)
        if self.group_role == self.login_role:
            raise AccessError(
                gettext("the group role and the login role must be two different roles")
            )
        if not 1 <= self.connection_limit <= 10_000:
            raise AccessError(
                gettext("connection limit must be between 1 and 10000, not %(value)s")
                % {"value": self.connection_limit}
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
    """``name`` when it is a plain role name; ``what`` (translated) names it in the error."""
    if not _ROLE_NAME.fullmatch(name) or len(name.encode()) > 63:
        raise AccessError(
            gettext(
                "%(what)s %(name)s is not a plain role name "
                "(lower-case letters, digits and _, at most 63 characters)"
            )
            % {"what": what, "name": repr(name)}
        )
    if name.startswith("pg_") or name in _RESERVED_ROLE_NAMES:
        raise AccessError(
            gettext("%(what)s %(name)s is reserved by PostgreSQL")
            % {"what": what, "name": repr(name)}
        )
    return name


def parse_duration_ms(value: str, what: str) -> int:
    """'60s', '5min', '1500ms', '2h' or a number of milliseconds -> milliseconds (> 0)."""
    match = _DURATION.fullmatch(str(value))
    if not match:
        raise AccessError(
            gettext("%(what)s %(value)s is not a duration like 60s, 5min, 1500ms or 2h")
            % {"what": what, "value": repr(value)}
        )
    ms = int(match.group(1)) * _UNIT_MS[match.group(2) or "ms"]
    if not 0 < ms <= _INT4_MAX:
        raise AccessError(
            gettext("%(what)s must be more than 0 and at most %(max)s ms, not %(value)s")
            % {"what": what, "max": _INT4_MAX, "value": repr(value)}
        )
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
    # Changes already applied in the same transaction before this plan was made (the
    # ownership step), listed with it.
    applied_before: list[Change] = field(default_factory=list)

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

# Settings of the role in every database: database NULL = for every database.
ROLE_SETTINGS_SQL = """
SELECT db.datname::text, cfg
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_database db ON db.oid = s.setdatabase
CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(role)s)
  AND (s.setdatabase = 0 OR db.oid IS NOT NULL)
ORDER BY 1 NULLS FIRST, 2
"""

# Every privilege the given roles hold directly: on every database (a shared catalog, so
# also postgres and template1), and in this database on schemas, relations, columns,
# routines, types, languages, foreign-data wrappers and servers, large objects and
# default privileges; tablespaces (shared). PostgreSQL 15+ adds parameters (below).
# The grantee's privileges on what it owns are left out: ownership is reported apart.
# ``name`` of a routine or type is its regprocedure / regtype text, which PostgreSQL
# quotes itself (format_procedure, format_type), so it can be put into a statement.
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
WHERE d.datdba <> g.oid
UNION ALL
SELECT 'schema', n.nspname, n.nspname, NULL, NULL, NULL, g.rolname, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL aclexplode(n.nspacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE n.nspowner <> g.oid
UNION ALL
SELECT 'relation', n.nspname, c.relname, NULL, NULL, c.relkind::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE c.relowner <> g.oid
UNION ALL
SELECT 'column', n.nspname, c.relname, att.attname, NULL, c.relkind::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_attribute att
JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(att.attacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE att.attacl IS NOT NULL AND NOT att.attisdropped AND c.relowner <> g.oid
UNION ALL
SELECT 'routine', n.nspname, p.oid::regprocedure::text, NULL, NULL, p.prokind::text,
       g.rolname, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL aclexplode(p.proacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE p.proowner <> g.oid
UNION ALL
SELECT 'type', n.nspname, t.oid::regtype::text, NULL, NULL, t.typtype::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
CROSS JOIN LATERAL aclexplode(t.typacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE t.typowner <> g.oid
UNION ALL
SELECT 'language', NULL, l.lanname::text, NULL, NULL, NULL, g.rolname, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_language l
CROSS JOIN LATERAL aclexplode(l.lanacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE l.lanowner <> g.oid
UNION ALL
SELECT 'foreign data wrapper', NULL, w.fdwname::text, NULL, NULL, NULL, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_foreign_data_wrapper w
CROSS JOIN LATERAL aclexplode(w.fdwacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE w.fdwowner <> g.oid
UNION ALL
SELECT 'foreign server', NULL, fs.srvname::text, NULL, NULL, NULL, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_foreign_server fs
CROSS JOIN LATERAL aclexplode(fs.srvacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE fs.srvowner <> g.oid
UNION ALL
SELECT 'tablespace', NULL, ts.spcname::text, NULL, NULL, NULL, g.rolname, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_tablespace ts
CROSS JOIN LATERAL aclexplode(ts.spcacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE ts.spcowner <> g.oid
UNION ALL
SELECT 'large object', NULL, lo.oid::text, NULL, NULL, NULL, g.rolname, a.privilege_type,
       a.is_grantable
FROM pg_catalog.pg_largeobject_metadata lo
CROSS JOIN LATERAL aclexplode(lo.lomacl) a
JOIN grantee g ON g.oid = a.grantee
WHERE lo.lomowner <> g.oid
UNION ALL
SELECT 'default', n.nspname, NULL, NULL, owner.rolname, da.defaclobjtype::text, g.rolname,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_default_acl da
JOIN pg_catalog.pg_roles owner ON owner.oid = da.defaclrole
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = da.defaclnamespace
CROSS JOIN LATERAL aclexplode(da.defaclacl) a
JOIN grantee g ON g.oid = a.grantee
"""

# pg_parameter_acl (GRANT SET / ALTER SYSTEM ON PARAMETER) exists from PostgreSQL 15.
PARAMETER_PRIVILEGES_SQL = """
SELECT 'parameter', NULL, pa.parname::text, NULL, NULL, NULL, r.rolname::text,
       a.privilege_type::text, a.is_grantable
FROM pg_catalog.pg_parameter_acl pa
CROSS JOIN LATERAL aclexplode(pa.paracl) a
JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE r.rolname = ANY(%(names)s)
"""

# PUBLIC's privileges in this database beyond the ones the object started with: what
# initdb or the extension's script gave it (pg_init_privs), else the built-in default
# (acldefault). The Metabase role is a member of PUBLIC, so any such grant is a grant to
# it. Fewer privileges than at the start (the large-object functions below) are fine.
PUBLIC_EXTRA_SQL = """
WITH obj AS (
    SELECT 'schema' AS kind, 'pg_namespace'::regclass AS classid, n.oid AS objid,
           0 AS objsubid, n.nspname::text AS schema, n.nspname::text AS name,
           NULL::text AS column_name, NULL::text AS objtype, n.nspacl AS acl,
           acldefault('n', n.nspowner) AS dflt
    FROM pg_catalog.pg_namespace n
    UNION ALL
    SELECT 'relation', 'pg_class'::regclass, c.oid, 0, n.nspname, c.relname, NULL,
           c.relkind::text, c.relacl,
           acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'column', 'pg_class'::regclass, c.oid, att.attnum, n.nspname, c.relname,
           att.attname, c.relkind::text, att.attacl, NULL::aclitem[]
    FROM pg_catalog.pg_attribute att
    JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE att.attacl IS NOT NULL AND NOT att.attisdropped
    UNION ALL
    SELECT 'routine', 'pg_proc'::regclass, p.oid, 0, n.nspname, p.oid::regprocedure::text,
           NULL, p.prokind::text, p.proacl, acldefault('f', p.proowner)
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    UNION ALL
    SELECT 'language', 'pg_language'::regclass, l.oid, 0, NULL, l.lanname::text, NULL, NULL,
           l.lanacl, acldefault('l', l.lanowner)
    FROM pg_catalog.pg_language l
    UNION ALL
    SELECT 'large object', 'pg_largeobject'::regclass, lo.oid, 0, NULL, lo.oid::text, NULL,
           NULL, lo.lomacl, acldefault('L', lo.lomowner)
    FROM pg_catalog.pg_largeobject_metadata lo
    UNION ALL
    SELECT 'database', 'pg_database'::regclass, d.oid, 0, NULL, d.datname::text, NULL,
           NULL, d.datacl, acldefault('d', d.datdba)
    FROM pg_catalog.pg_database d WHERE d.datname = current_database()
)
SELECT o.kind, o.schema, o.name, o.column_name, NULL, o.objtype, 'PUBLIC',
       a.privilege_type::text, a.is_grantable
FROM obj o
CROSS JOIN LATERAL aclexplode(o.acl) a
LEFT JOIN pg_catalog.pg_init_privs ip
       ON ip.classoid = o.classid AND ip.objoid = o.objid AND ip.objsubid = o.objsubid
WHERE o.acl IS NOT NULL AND a.grantee = 0
  -- initdb grants PUBLIC its views without recording them in pg_init_privs; each shows
  -- only what the reader has privileges on.
  AND o.schema IS DISTINCT FROM 'information_schema'
  AND NOT EXISTS (
      SELECT 1 FROM aclexplode(COALESCE(ip.initprivs, o.dflt, '{}'::aclitem[])) b
      WHERE b.grantee = 0 AND b.privilege_type = a.privilege_type
  )
"""

# The functions that create a large object. A role that cannot create one and owns none
# cannot write any (writing needs ownership or an UPDATE grant, lo_compat_privileges off).
# lo_import's server-side forms are superuser-only from initdb; listed so a grant is seen.
LARGE_OBJECT_CREATORS: tuple[str, ...] = (
    "pg_catalog.lo_creat(integer)",
    "pg_catalog.lo_create(oid)",
    "pg_catalog.lo_from_bytea(oid,bytea)",
    "pg_catalog.lo_import(text)",
    "pg_catalog.lo_import(text,oid)",
)

# For each of them: may PUBLIC execute it, and may the given role (directly)?
LARGE_OBJECT_CREATORS_SQL = """
SELECT sig.text,
       EXISTS (SELECT 1 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_may,
       EXISTS (SELECT 1 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
               WHERE a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(role)s)
                 AND a.privilege_type = 'EXECUTE') AS role_may
FROM unnest(%(signatures)s::text[]) AS sig(text)
JOIN pg_catalog.pg_proc p ON p.oid = sig.text::regprocedure
ORDER BY 1
"""

# What the given roles own, in this database (described) or elsewhere (counted), from
# pg_shdepend; temporary objects are marked, they go with their session.
OWNED_SQL = """
SELECT r.rolname::text,
       CASE WHEN d.dbid = 0 OR db.datname = current_database()
            THEN pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END,
       db.datname::text,
       d.classid = 'pg_catalog.pg_class'::regclass AND EXISTS (
           SELECT 1 FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE c.oid = d.objid AND c.relpersistence = 't') AS temporary,
       d.classid = 'pg_catalog.pg_largeobject'::regclass AS large_object,
       d.objid,
       d.classid = 'pg_catalog.pg_namespace'::regclass OR (
           d.classid = 'pg_catalog.pg_class'::regclass AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_class c
               WHERE c.oid = d.objid AND c.relpersistence = 't')) AS application_object
FROM pg_catalog.pg_shdepend d
JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
LEFT JOIN pg_catalog.pg_database db ON db.oid = d.dbid
WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.deptype = 'o'
  AND r.rolname = ANY(%(names)s)
ORDER BY 1, 3 NULLS FIRST, 2
"""

# Views and materialized views in the readable schemas that read a relation of the
# forbidden schemas, directly or through other views: a view runs with its owner's
# privileges, so SELECT on it would read auth or audit. A view's query is its
# pg_rewrite rule; pg_depend records every relation (and column) the rule reads.
FORBIDDEN_DEPENDENTS_SQL = """
WITH RECURSIVE tainted(oid, via) AS (
    SELECT c.oid, c.oid::regclass::text
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(forbidden)s)
    UNION
    SELECT rw.ev_class, t.via
    FROM tainted t
    JOIN pg_catalog.pg_depend dep
      ON dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.refobjid = t.oid
     AND dep.classid = 'pg_catalog.pg_rewrite'::regclass
    JOIN pg_catalog.pg_rewrite rw ON rw.oid = dep.objid
    WHERE rw.ev_class <> t.oid
)
SELECT n.nspname::text, c.relname::text, c.relkind::text,
       string_agg(DISTINCT t.via, ', ' ORDER BY t.via) AS reads
FROM tainted t
JOIN pg_catalog.pg_class c ON c.oid = t.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
GROUP BY 1, 2, 3
ORDER BY 1, 2
"""

# Databases other than this one that PUBLIC may connect to. postgres and template1 are
# maintenance databases no application uses; the command takes PUBLIC's CONNECT there.
MAINTENANCE_DATABASES: tuple[str, ...] = ("postgres", "template1")
PUBLIC_CONNECT_SQL = """
SELECT d.datname::text
FROM pg_catalog.pg_database d
WHERE d.datallowconn AND d.datname <> current_database()
  AND EXISTS (SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a
              WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT')
ORDER BY 1
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

# Memberships in the Metabase roles (the other direction of MEMBERSHIPS_SQL). Before 16
# there is no inherit_option / set_option: inheritance is the member's rolinherit, and
# SET ROLE is always allowed.
MEMBERS_OF_OURS_SQL = """
SELECT m.rolname::text AS member, r.rolname::text AS role,
       bool_or(am.admin_option),
       bool_or(COALESCE((to_jsonb(am) ->> 'inherit_option')::boolean, m.rolinherit)),
       bool_or(COALESCE((to_jsonb(am) ->> 'set_option')::boolean, true))
FROM pg_catalog.pg_auth_members am
JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
JOIN pg_catalog.pg_roles m ON m.oid = am.member
WHERE r.rolname = ANY(%(names)s)
GROUP BY 1, 2
ORDER BY 1, 2
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


def read_all_role_settings(conn: psycopg.Connection, role: str) -> dict[str | None, dict[str, str]]:
    """Settings of ``role`` by database (None: for every database), as ALTER ROLE set them."""
    found: dict[str | None, dict[str, str]] = defaultdict(dict)
    for database, cfg in _rows(conn, ROLE_SETTINGS_SQL, {"role": role}):
        key, _, value = cfg.partition("=")
        found[database][key] = value
    return dict(found)


def read_role_settings(
    conn: psycopg.Connection, role: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings for every database, settings for this database only) of ``role``."""
    found = read_all_role_settings(conn, role)
    here = read_session(conn).database
    return found.get(None, {}), found.get(here, {})


_KIND_ORDER = {
    "database": 0,
    "tablespace": 1,
    "parameter": 2,
    "schema": 3,
    "relation": 4,
    "column": 5,
    "routine": 6,
    "type": 7,
    "language": 8,
    "foreign data wrapper": 9,
    "foreign server": 10,
    "large object": 11,
    "default": 12,
}


def _sorted_privileges(rows: list[Privilege]) -> list[Privilege]:
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


def read_privileges(conn: psycopg.Connection, names: list[str]) -> list[Privilege]:
    """Every privilege the roles hold directly (see PRIVILEGES_SQL), parameters on 15+."""
    rows = [Privilege(*row) for row in _rows(conn, PRIVILEGES_SQL, {"names": names})]
    if read_session(conn).server_version_num >= 150000:
        rows += [Privilege(*row) for row in _rows(conn, PARAMETER_PRIVILEGES_SQL, {"names": names})]
    return _sorted_privileges(rows)


def read_public_extra_privileges(conn: psycopg.Connection) -> list[Privilege]:
    """PUBLIC's privileges in this database beyond the ones initdb or an extension gave."""
    return _sorted_privileges([Privilege(*row) for row in _rows(conn, PUBLIC_EXTRA_SQL)])


@dataclass(frozen=True)
class Owned:
    """One object a Metabase role owns."""

    role: str
    description: str | None  # None: in another database
    database: str | None
    temporary: bool
    large_object: bool
    objid: int
    # A schema or a permanent table: what an application role owns, never what the SQL
    # editor can make (large objects, temporary tables).
    application_object: bool

    @property
    def label(self) -> str:
        if self.description is None:
            return f"an object in database {self.database}"
        return self.description + (" (temporary, ends with its session)" if self.temporary else "")


def read_owned(conn: psycopg.Connection, names: list[str]) -> list[Owned]:
    return [Owned(*row) for row in _rows(conn, OWNED_SQL, {"names": names})]


@dataclass(frozen=True)
class ForbiddenDependent:
    """A view or materialized view in a readable schema that reads auth or audit."""

    schema: str
    name: str
    relkind: str
    reads: str

    @property
    def label(self) -> str:
        kind = "materialized view" if self.relkind == "m" else "view"
        return f"{kind} {self.schema}.{self.name} (reads {self.reads})"


def read_forbidden_dependents(conn: psycopg.Connection) -> list[ForbiddenDependent]:
    rows = _rows(
        conn,
        FORBIDDEN_DEPENDENTS_SQL,
        {"forbidden": list(FORBIDDEN_SCHEMAS), "schemas": list(SCHEMAS)},
    )
    return [ForbiddenDependent(*row) for row in rows]


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
    name, schema = p.name or "", p.schema or ""
    if p.kind == "database":
        return sql.SQL("DATABASE {}").format(_id(name)), f"database {p.name}"
    if p.kind == "schema":
        return sql.SQL("SCHEMA {}").format(_id(name)), f"schema {p.name}"
    if p.kind == "tablespace":
        return sql.SQL("TABLESPACE {}").format(_id(name)), f"tablespace {p.name}"
    if p.kind == "parameter":
        return sql.SQL("PARAMETER {}").format(_id(name)), f"parameter {p.name}"
    if p.kind == "language":
        return sql.SQL("LANGUAGE {}").format(_id(name)), f"language {p.name}"
    if p.kind == "foreign data wrapper":
        return sql.SQL("FOREIGN DATA WRAPPER {}").format(_id(name)), f"wrapper {p.name}"
    if p.kind == "foreign server":
        return sql.SQL("FOREIGN SERVER {}").format(_id(name)), f"server {p.name}"
    if p.kind == "large object":
        return sql.SQL("LARGE OBJECT {}").format(sql.Literal(int(name))), (f"large object {p.name}")
    if p.kind in ("routine", "type"):
        # regprocedure / regtype output: schema-qualified and quoted by PostgreSQL itself.
        keyword = "ROUTINE" if p.kind == "routine" else "TYPE"
        qualified = "." in name.split("(")[0] or (p.kind == "type" and p.schema == "pg_catalog")
        signature = name if qualified else f"{_quote(schema)}.{name}"
        target = sql.SQL(keyword + " ") + sql.SQL(signature)
        return target, f"{p.kind} {signature}"
    kind = "SEQUENCE" if p.objtype == "S" else "TABLE"
    return sql.SQL(kind + " {}").format(_id(schema, name)), f"{p.schema}.{p.name}"


def _quote(name: str | None) -> str:
    """An identifier quoted as PostgreSQL's quote_ident would (for a catalog name)."""
    if name and _ROLE_NAME.fullmatch(name):
        return name
    return '"' + (name or "").replace('"', '""') + '"'


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == "PUBLIC" else _id(name)


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
            grantee=_grantee(p.grantee),
        )
        summary = f"revoke {label} on column {p.schema}.{p.name}.{p.column} from {p.grantee}"
        return Change(summary, statement)
    target, label_obj = _object_ref(p)
    statement = sql.SQL("{prefix}{what} ON {target} FROM {grantee}").format(
        prefix=prefix, what=what, target=target, grantee=_grantee(p.grantee)
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
            gettext(
                "the command runs as %(role)s, one of the roles it manages; "
                "run it as the role that owns the tables"
            )
            % {"role": repr(session.current_user)}
        )
    if migrator in names:
        raise AccessError(
            gettext("the migration role %(role)s cannot be a Metabase role")
            % {"role": repr(migrator)}
        )
    if not _rows(conn, ROLE_EXISTS_SQL, {"name": migrator})[0][0]:
        raise AccessError(
            gettext("migration role %(role)s does not exist") % {"role": repr(migrator)}
        )
    present = {row[0] for row in _rows(conn, SCHEMAS_SQL, {"schemas": list(SCHEMAS)})}
    missing = [s for s in SCHEMAS if s not in present]
    if missing:
        raise AccessError(
            gettext(
                "schema %(schemas)s does not exist in database %(database)s: "
                "run `manage.py migrate` first"
            )
            % {"schemas": ", ".join(missing), "database": session.database}
        )

    roles = read_roles(conn, names)
    for role in roles.values():
        if role.attributes["rolsuper"]:
            raise AccessError(
                gettext("role %(role)s exists and is a superuser; refusing to manage it")
                % {"role": repr(role.name)}
            )
    # What the roles own is reported, never a reason to stop: a large object or a temporary
    # table made from the SQL editor must not block a password rotation. plan_owned()
    # drops or reassigns it when asked.
    owned_here = read_owned(conn, names)
    application = [
        o for o in owned_here if o.application_object and o.database in (None, session.database)
    ]
    if application:
        first = application[0]
        raise AccessError(
            f"role {first.role!r} owns {first.label}"
            + (f" and {len(application) - 1} more" if len(application) > 1 else "")
            + ": it looks like an application role, refusing to manage it "
            "(--reassign-owned-to ROLE or --drop-owned if it really is a Metabase role)"
        )
    for owned in owned_here:
        plan.notes.append(
            f"{owned.role} owns {owned.label}: --drop-owned or --reassign-owned-to ROLE "
            "takes it away"
        )

    _plan_roles(conn, plan, config, roles, password, password_state)
    _plan_memberships(conn, plan, config, roles, session)
    _plan_settings(conn, plan, config, roles)
    _plan_privileges(conn, plan, config, migrator, session)
    return plan


def plan_owned(
    conn: psycopg.Connection, config: AccessConfig, *, drop: bool, reassign_to: str | None
) -> Plan:
    """DROP OWNED or REASSIGN OWNED for both roles, when they own anything here.

    Run (and committed to the same transaction) before :func:`plan_grant`: DROP OWNED
    also revokes the role's privileges in this database, which the grant plan then
    restores from the catalog it reads afterwards. A temporary table of a live session
    is left to its session: dropping it would wait on that session's lock.
    """
    session = read_session(conn)
    plan = Plan(database=session.database)
    if drop and reassign_to:
        raise AccessError(gettext("--drop-owned and --reassign-owned-to exclude each other"))
    if reassign_to is not None:
        validate_role_name(reassign_to, gettext("role to reassign to"))
        if reassign_to in (config.group_role, config.login_role):
            raise AccessError(
                gettext("cannot reassign to %(role)s, one of the Metabase roles")
                % {"role": repr(reassign_to)}
            )
        if not _rows(conn, ROLE_EXISTS_SQL, {"name": reassign_to})[0][0]:
            raise AccessError(
                gettext("role to reassign to %(role)s does not exist") % {"role": repr(reassign_to)}
            )
    if not (drop or reassign_to):
        return plan
    names = [config.login_role, config.group_role]
    present = read_roles(conn, names)
    for name in names:
        owned = [
            o
            for o in read_owned(conn, [name])
            if o.database == session.database and not o.temporary
        ]
        if name not in present or not owned:
            continue
        what = "; ".join(o.label for o in owned)
        if drop:
            plan.add(
                f"drop what {name} owns: {what}", sql.SQL("DROP OWNED BY {}").format(_id(name))
            )
        else:
            plan.add(
                f"give what {name} owns to {reassign_to}: {what}",
                sql.SQL("REASSIGN OWNED BY {} TO {}").format(_id(name), _id(reassign_to or "")),
            )
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
    elif not password_state.needs_setting and password_state.reason:
        plan.notes.append(f"{login}: {password_state.reason}")
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
    # Roles that are members of the Metabase roles: nothing should be. A non-superuser
    # with CREATEROLE gets ADMIN OPTION (on 16+ without INHERIT or SET) on each role it
    # creates: that is how it manages them, and it is kept.
    for member, role, admin_option, inherits, can_set in _rows(
        conn, MEMBERS_OF_OURS_SQL, {"names": [group, login]}
    ):
        if (member, role) == (login, group):
            continue
        if member == session.current_user and admin_option and not inherits and not can_set:
            continue
        plan.add(
            f"revoke membership of {member} in {role}",
            sql.SQL("REVOKE {} FROM {}").format(_id(role), _id(member)),
        )
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
    """The login role's declared settings for every database, and nothing else anywhere.

    Any role may ``ALTER ROLE`` itself ``SET`` a user-settable parameter (the SQL editor
    can run it), for every database or ``IN DATABASE``; those are reset, as is anything
    set on the group role (settings of a group do not reach its members, but nothing is
    declared there).
    """
    login, group = config.login_role, config.group_role
    wanted = config.role_settings()
    for name in (login, group):
        found = read_all_role_settings(conn, name) if name in roles else {}
        for database, settings in sorted(found.items(), key=lambda kv: kv[0] or ""):
            for key, value in sorted(settings.items()):
                if name == login and database is None and key in wanted:
                    continue
                where = f" in database {database}" if database else ""
                scope = (
                    sql.SQL(" IN DATABASE {}").format(_id(database)) if database else sql.SQL("")
                )
                plan.add(
                    f"reset {key} = {value} set for {name}{where} (not declared)",
                    sql.SQL("ALTER ROLE {}{} RESET {}").format(_id(name), scope, _id(key)),
                )
    everywhere = (read_all_role_settings(conn, login) if login in roles else {}).get(None, {})
    for key, value in wanted.items():
        if everywhere.get(key) != value:
            unit = " ms" if key.endswith("timeout") else ""
            was = f" (was {everywhere[key]})" if key in everywhere else ""
            plan.add(f"set {key} = {value}{unit} for {login}{was}", _set_setting(login, key, value))


def _wanted_privilege(
    p: Privilege,
    config: AccessConfig,
    migrator: str,
    database: str,
    excluded: frozenset[tuple[str, str]] = frozenset(),
) -> bool:
    """Is this (non-grantable) privilege one the group role should hold?"""
    if p.grantee != config.group_role:
        return False  # the login role holds nothing itself
    if p.kind == "database":
        return p.name == database and p.privilege == "CONNECT"
    if p.kind == "schema":
        return p.name in SCHEMAS and p.privilege == "USAGE"
    if p.kind == "relation":
        return (
            p.schema in SCHEMAS
            and p.objtype in READABLE_RELKINDS
            and p.privilege == "SELECT"
            and (p.schema, p.name) not in excluded
        )
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
    # Views over auth or audit are never granted: the default privileges grant SELECT on
    # them the moment a migration creates them, so a run takes it back.
    dependents = read_forbidden_dependents(conn)
    excluded = frozenset((d.schema, d.name) for d in dependents)
    for d in dependents:
        plan.notes.append(f"not granted: {d.label}")

    def wanted(p: Privilege) -> bool:
        return _wanted_privilege(p, config, migrator, session.database, excluded)

    # First take away what is not wanted, so nothing extra survives a run.
    for p in held:
        if not wanted(p):
            plan.changes.append(_revoke(p))
        elif p.grantable:
            plan.changes.append(_revoke(p, only_grant_option=True))

    # PUBLIC: the Metabase role is one of its members.
    for p in read_public_extra_privileges(conn):
        plan.changes.append(_revoke(p))
    _plan_large_object_creators(conn, plan, migrator)
    for database in _rows(conn, PUBLIC_CONNECT_SQL):
        if database[0] in MAINTENANCE_DATABASES:
            plan.add(
                f"revoke CONNECT on maintenance database {database[0]} from PUBLIC "
                "(superusers and the database owner keep it)",
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(_id(database[0])),
            )

    have = {(p.kind, p.schema, p.name, p.for_role) for p in held if wanted(p)}
    if ("database", None, session.database, None) not in have:
        plan.add(
            f"grant CONNECT on database {session.database} to {group}",
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_id(session.database), _id(group)),
        )

    if _rows(conn, PUBLIC_CREATE_ON_PUBLIC_SQL)[0][0] and not any(
        p.kind == "schema" and p.name == "public" and p.privilege == "CREATE"
        for p in read_public_extra_privileges(conn)
    ):
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
        if ("relation", schema, name, None) not in have and (schema, name) not in excluded:
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


def _plan_large_object_creators(conn: psycopg.Connection, plan: Plan, migrator: str) -> None:
    """Take EXECUTE on the functions that create large objects from PUBLIC.

    Large objects need no grant to create, and a read-only default is switched off with
    one SET: this is the only way PostgreSQL offers to stop a role writing them. The
    migration role gets EXECUTE back, so the application keeps them (it uses none today).
    """
    rows = _rows(
        conn,
        LARGE_OBJECT_CREATORS_SQL,
        {"signatures": list(LARGE_OBJECT_CREATORS), "role": migrator},
    )
    for signature, public_may, role_may in rows:
        # One of the LARGE_OBJECT_CREATORS constants, schema-qualified.
        target = sql.SQL("FUNCTION ") + sql.SQL(signature)
        if public_may:
            plan.add(
                f"revoke EXECUTE on {signature} from PUBLIC (it creates large objects)",
                sql.SQL("REVOKE EXECUTE ON {} FROM PUBLIC").format(target),
            )
            if not role_may:
                plan.add(
                    f"grant EXECUTE on {signature} to {migrator} (the application keeps it)",
                    sql.SQL("GRANT EXECUTE ON {} TO {}").format(target, _id(migrator)),
                )


def plan_revoke(conn: psycopg.Connection, config: AccessConfig) -> Plan:
    """Revoke every privilege both roles hold in this database, then drop them.

    Privileges on databases, tablespaces and parameters (shared catalogs) are revoked from
    here too. A role that still holds privileges on objects inside another database is
    kept (dropping it would fail); run ``--revoke`` there too. Ownership of anything
    stops the revoke before it starts (``--drop-owned`` / ``--reassign-owned-to`` first).
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

    # Privileges of the kinds read_privileges() covers, which the revokes above remove
    # (databases, tablespaces and parameters are shared catalogs: revoked from here too).
    revoked_here = {
        "pg_class",
        "pg_namespace",
        "pg_default_acl",
        "pg_proc",
        "pg_type",
        "pg_language",
        "pg_largeobject",
        "pg_foreign_data_wrapper",
        "pg_foreign_server",
        "pg_database",
        "pg_tablespace",
        "pg_parameter_acl",
    }
    for name in names:  # login role first: it is a member of the group
        if name not in roles:
            continue
        elsewhere: set[str] = set()
        blockers: list[str] = []
        for location, database, deptype, catalog, obj, is_this_database in _rows(
            conn, DEPENDENCIES_SQL, {"role": name}
        ):
            if deptype == "a" and (
                is_this_database or (location in ("here", "shared") and catalog in revoked_here)
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


# Every run of the command (and the watchdog) takes this session-level advisory lock on
# its own connection first, so two at once never race on CREATE ROLE: the second waits,
# then plans from what the first committed. ASCII bytes of "mbaccess".
LOCK_KEY = int.from_bytes(b"mbaccess", "big")


@contextmanager
def serialized(conn: psycopg.Connection) -> Iterator[None]:
    """Hold the Metabase roles' advisory lock while the block runs (waits for it)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%(key)s)", {"key": LOCK_KEY})
    try:
        yield
    finally:
        with suppress(psycopg.Error), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": LOCK_KEY})


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


# SQLSTATEs of a refused login, as the server reports them.
WRONG_PASSWORD = "28P01"  # noqa: S105 - invalid_password, an SQLSTATE
TOO_MANY_CONNECTIONS = "53300"  # too_many_connections (the role's or the server's limit)
CANNOT_CONNECT_NOW = "57P03"  # cannot_connect_now: starting up, shutting down, recovery


@dataclass(frozen=True)
class LoginOutcome:
    """How a login attempt ended: ``ok``, ``wrong password``, ``too many connections``,
    ``refused`` (the role may not log in, pg_hba, ...) or ``unreachable`` (no server)."""

    kind: str
    detail: str = ""
    sqlstate: str | None = None


def try_login(params: dict[str, str], role: str, password: str, application_name: str):
    """Log in as ``role``: (connection or None, the classified outcome).

    Only ``wrong password`` means the password must be set again; the connection limit
    being reached or the server being down says nothing about the password.
    """
    try:
        conn = psycopg.connect(
            # libpq parameters (all str): none can be one of connect()'s own keyword
            # arguments (autocommit, row_factory, ...), which mypy cannot know.
            **params,  # type: ignore[arg-type]
            user=role,
            password=password,
            connect_timeout=10,
            autocommit=True,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        return None, classify_login_error(exc)
    return conn, LoginOutcome("ok")


# libpq reports no SQLSTATE for a failed connection attempt (only the server's message),
# so the server's messages (English: the default lc_messages, and Cloud SQL's) are
# matched. Anything not recognised is "refused": the password is then left alone.
_LOGIN_MESSAGES: tuple[tuple[str, str, str], ...] = (
    ("password authentication failed", "wrong password", WRONG_PASSWORD),
    ("too many connections", "too many connections", TOO_MANY_CONNECTIONS),
    ("too many clients", "too many connections", TOO_MANY_CONNECTIONS),
    ("the database system is", "unreachable", CANNOT_CONNECT_NOW),
    ("connection refused", "unreachable", ""),
    ("timeout expired", "unreachable", ""),
    ("could not translate host name", "unreachable", ""),
    ("no such file or directory", "unreachable", ""),
    ("server closed the connection", "unreachable", ""),
)


def classify_login_error(exc: psycopg.OperationalError) -> LoginOutcome:
    detail = first_line(exc)
    text = str(exc).lower()
    for needle, kind, state in _LOGIN_MESSAGES:
        if needle in text:
            return LoginOutcome(kind, detail, state or None)
    return LoginOutcome("refused", detail, None)


def probe_password(params: dict[str, str], role: str, password: str) -> PasswordState:
    """Log in as ``role``: does the current password still work?

    Only a wrong password (SQLSTATE 28P01) answers "set it again"; nothing is set on a
    guess (a new verifier each time the connection limit is reached would not be
    idempotent).
    """
    conn, outcome = try_login(params, role, password, "metabase_access")
    if conn is not None:
        conn.close()
        return PasswordState(needs_setting=False)
    if outcome.kind == "wrong password":
        return PasswordState(needs_setting=True, reason=f"login failed: {outcome.detail}")
    # Too many connections, the server not answering the probe, the role refused (NOLOGIN,
    # which the plan restores; pg_hba): the password is left alone and the rest of the
    # plan still runs; the next run checks the password again.
    return PasswordState(
        needs_setting=False,
        reason=f"password not checked, left as it is ({outcome.kind}: {outcome.detail})",
    )


def first_line(exc: BaseException) -> str:
    """The meaningful line of a libpq/server error, without the 'connection failed' prefix."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        for marker in ("FATAL:", "ERROR:"):
            if marker in line:
                return line.split(marker, 1)[1].strip()
    return lines[0] if lines else type(exc).__name__
