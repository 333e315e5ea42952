"""Plan the statements that bring a database to ``dbroles/declaration.py``.

Same design as the Metabase roles (``dbroles/metabase.py``, whose ``Plan``, ``render``
and ``apply`` are used here): read the catalogs, compare with the declaration, emit
only what differs, so a second plan right after applying is empty. Privileges are read
with ``aclexplode`` on the objects' own ACLs (what was granted to the role itself, not
what it inherits). The caller runs the plan in one transaction under an advisory lock.

What is refused, in one line (``AccessError``), before anything runs: a declared role
that exists but was not created by this command (no marker comment; ``adopt`` takes
it over) or is a superuser; a new login role without its password variable, or a
password that is too short; a current user that can neither create roles nor is a
superuser (on Cloud SQL: not a member of ``cloudsqlsuperuser``); objects to hand to the
migrator whose owner the current user is not a member of.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .declaration import SCHEMAS, DbRole, declared_roles
from .metabase import AccessError, Plan, login_params, password_verifier, probe_password

MARKER = "managed by manage.py db_roles: "
MIN_PASSWORD = 12
#: the advisory lock of db_roles (ASCII "portalrl")
LOCK_KEY = int.from_bytes(b"portalrl", "big")

_RELKIND_KEYWORD = {
    "r": "TABLE",
    "p": "TABLE",
    "f": "FOREIGN TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
}


def _id(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _kw(words: tuple[str, ...] | list[str]) -> sql.Composable:
    allowed = {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "REFERENCES",
        "TRIGGER",
        "USAGE",
        "CREATE",
        "MAINTAIN",
    }
    for w in words:
        if w not in allowed:
            raise AccessError(f"unknown privilege {w!r}")
    return sql.SQL(", ").join(sql.SQL(w) for w in sorted(words))


def _rows(conn: psycopg.Connection, query: str, params: dict | None = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params or {})
        return cur.fetchall()


@dataclass
class Existing:
    name: str
    login: bool
    superuser: bool
    comment: str


ROLES_SQL = """
SELECT r.rolname, r.rolcanlogin, r.rolsuper,
       coalesce(pg_catalog.shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_catalog.pg_roles r WHERE r.rolname = ANY(%(names)s)
"""
MEMBERSHIPS_SQL = """
SELECT m.rolname, g.rolname FROM pg_catalog.pg_auth_members a
  JOIN pg_catalog.pg_roles m ON m.oid = a.member JOIN pg_catalog.pg_roles g ON g.oid = a.roleid
 WHERE m.rolname = ANY(%(names)s)
"""
SCHEMA_ACL_SQL = """
SELECT n.nspname, g.rolname, a.privilege_type
  FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
  JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND g.rolname = ANY(%(names)s)
"""
RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind, pg_catalog.pg_get_userbyid(c.relowner),
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass
               AND d.objid = c.oid AND d.deptype IN ('a', 'i')) AS attached
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
   -- an extension's objects (pg_stat_statements' views) are the extension's business
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""
RELATION_ACL_SQL = """
SELECT n.nspname, c.relname, g.rolname, a.privilege_type
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
       aclexplode(c.relacl) a JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND g.rolname = ANY(%(names)s)
"""
SCHEMA_OWNERS_SQL = """
SELECT n.nspname, pg_catalog.pg_get_userbyid(n.nspowner)
  FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
"""
FUNCTIONS_SQL = """
SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY(%(schemas)s)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass
                   AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 1
"""
DEFAULT_ACL_SQL = """
SELECT n.nspname, d.defaclobjtype, g.rolname, a.privilege_type
  FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
  JOIN pg_catalog.pg_roles o ON o.oid = d.defaclrole,
       aclexplode(d.defaclacl) a JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
 WHERE o.rolname = %(owner)s AND g.rolname = ANY(%(names)s)
"""
FUNCTION_ACL_SQL = """
SELECT p.oid::regprocedure::text,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a JOIN pg_catalog.pg_roles g
                 ON g.oid = a.grantee
                WHERE g.rolname = %(role)s AND a.privilege_type = 'EXECUTE')
  FROM pg_catalog.pg_proc p WHERE p.proname = ANY(%(names)s) ORDER BY 1
"""
CURRENT_SQL = """
SELECT current_user, r.rolsuper, r.rolcreaterole, current_database()
  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""


def plan_roles(
    conn: psycopg.Connection,
    *,
    roles: list[DbRole] | None = None,
    adopt: bool = False,
    dry_run: bool = False,
    check_passwords: bool = True,
    passwords: Mapping[str, str] | None = None,
) -> Plan:
    """The plan; ``dry_run`` allows a new login role without its password variable,
    ``check_passwords`` False skips the login that tells whether a password must be set
    again (a re-plan inside the applying transaction cannot log in as a new role).
    ``passwords`` (role key -> password) stands in for the password variables: the
    embedded development cluster keeps its roles' passwords in files, not the environment."""
    roles = roles if roles is not None else declared_roles()
    by_key = {r.key: r for r in roles}
    names = [r.name for r in roles]
    user, is_super, can_create, database = _rows(conn, CURRENT_SQL)[0]
    plan = Plan(database=database)
    if user in names:
        raise AccessError(
            f"db_roles runs as {user!r}, one of the roles it manages: run it as the "
            "instance's administrator (Cloud SQL: a member of cloudsqlsuperuser, e.g. postgres)"
        )
    if not (is_super or can_create):
        raise AccessError(
            f"{user!r} may not create roles (neither superuser nor CREATEROLE): on Cloud SQL "
            "run it as a member of cloudsqlsuperuser"
        )
    existing = {row[0]: Existing(*row) for row in _rows(conn, ROLES_SQL, {"names": names})}
    members = {(m, g) for m, g in _rows(conn, MEMBERSHIPS_SQL, {"names": [*names, user]})}

    # --- the roles themselves -------------------------------------------------------
    for r in roles:
        found = existing.get(r.name)
        if found is not None and found.superuser:
            raise AccessError(f"role {r.name!r} exists and is a superuser; refusing to manage it")
        if found is not None and not found.comment.startswith(MARKER) and not adopt:
            raise AccessError(
                f"role {r.name!r} exists and was not created by db_roles; set another name "
                f"or take it over with --adopt"
            )
        password = (passwords or {}).get(r.key) or (
            os.environ.get(r.password_env) if r.password_env else None
        )
        if password is not None and (len(password) < MIN_PASSWORD or password != password.strip()):
            raise AccessError(
                f"{r.password_env} must be at least {MIN_PASSWORD} characters without "
                "leading or trailing spaces"
            )
        login = sql.SQL("LOGIN" if r.login else "NOLOGIN")
        if found is None:
            if r.login and password is None and not dry_run:
                raise AccessError(
                    f"{r.password_env} is not set: the password of the new login role {r.name!r}"
                )
            if r.login:
                secret = password or secrets.token_urlsafe(24)
                plan.add(
                    f"create role {r.name}",
                    sql.SQL(
                        "CREATE ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(_id(r.name), login, password_verifier(conn, r.name, secret)),
                    sql.SQL(
                        "CREATE ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(_id(r.name), login, sql.SQL(f":'{r.key}_password'")),
                )
            else:
                plan.add(
                    f"create role {r.name}",
                    sql.SQL("CREATE ROLE {} NOLOGIN").format(_id(r.name)),
                )
        else:
            if found.login != r.login:
                plan.add(
                    f"{'LOGIN' if r.login else 'NOLOGIN'} {r.name}",
                    sql.SQL("ALTER ROLE {} {}").format(_id(r.name), login),
                )
            if (
                check_passwords
                and password is not None
                and r.login
                and probe_password(login_params(conn), r.name, password).needs_setting
            ):
                plan.add(
                    f"set the password of {r.name} (from {r.password_env})",
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        _id(r.name), password_verifier(conn, r.name, password)
                    ),
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        _id(r.name), sql.SQL(f":'{r.key}_password'")
                    ),
                )
        if found is None or found.comment != MARKER + r.key:
            plan.add(
                f"mark {r.name} as managed",
                sql.SQL("COMMENT ON ROLE {} IS {}").format(
                    _id(r.name), sql.Literal(MARKER + r.key)
                ),
            )
        for group in r.member_of:
            group_name = by_key[group].name if group in by_key else group
            if (r.name, group_name) not in members:
                plan.add(
                    f"grant {group_name} to {r.name}",
                    sql.SQL("GRANT {} TO {}").format(_id(group_name), _id(r.name)),
                )

    migrator = next(r for r in roles if r.owns_everything)
    # The current user must be able to act as the migrator (ALTER ... OWNER TO it).
    if not is_super and (user, migrator.name) not in members:
        plan.add(
            f"grant {migrator.name} to {user} (to hand objects to it)",
            sql.SQL("GRANT {} TO {}").format(_id(migrator.name), _id(user)),
        )

    # --- ownership: everything of the project's schemas to the migrator ---------------
    schemas = list(SCHEMAS)
    schema_owners = _rows(conn, SCHEMA_OWNERS_SQL, {"schemas": schemas})
    # A schema not made yet (a database before its first migrate) is made here, owned by
    # the migrator, so that its default privileges exist before the first table: the
    # migrate job then runs as the migrator from the very first migration.
    for schema in sorted(set(schemas) - {row[0] for row in schema_owners}):
        plan.add(
            f"schema {schema}: create, owner {migrator.name}",
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(_id(schema), _id(migrator.name)),
        )
    # Each app's first migration says CREATE SCHEMA IF NOT EXISTS, which PostgreSQL
    # checks against the database's CREATE privilege even when the schema exists.
    may_create = (
        migrator.name in existing
        and _rows(
            conn,
            "SELECT has_database_privilege(%(role)s, current_database(), 'CREATE')",
            {"role": migrator.name},
        )[0][0]
    )
    if not may_create:
        plan.add(
            f"database {database}: CREATE to {migrator.name}",
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(_id(database), _id(migrator.name)),
        )
    old_owners: set[str] = set()
    for schema, owner in schema_owners:
        if schema == "public":
            continue  # owned by pg_database_owner; the migrator gets CREATE on it instead
        if owner != migrator.name:
            old_owners.add(owner)
            plan.add(
                f"schema {schema}: owner {owner} -> {migrator.name}",
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(_id(schema), _id(migrator.name)),
            )
    relations = _rows(conn, RELATIONS_SQL, {"schemas": schemas})
    for schema, name, kind, owner, attached in relations:
        if owner != migrator.name and not attached:
            old_owners.add(owner)
            plan.add(
                f"{schema}.{name}: owner {owner} -> {migrator.name}",
                sql.SQL("ALTER {} {} OWNER TO {}").format(
                    sql.SQL(_RELKIND_KEYWORD[kind]), _id(schema, name), _id(migrator.name)
                ),
            )
    for signature, owner in _rows(conn, FUNCTIONS_SQL, {"schemas": schemas}):
        if owner != migrator.name:
            old_owners.add(owner)
            # regprocedure's text is PostgreSQL's own quoting of the name and arguments.
            plan.add(
                f"function {signature}: owner {owner} -> {migrator.name}",
                sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(
                    sql.SQL(signature), _id(migrator.name)
                ),
            )
    if not is_super:
        missing = sorted(o for o in old_owners if o != user and (user, o) not in members)
        if missing:
            raise AccessError(
                f"{user!r} is not a member of {', '.join(missing)}, which own(s) objects to "
                f"hand to {migrator.name}: GRANT {missing[0]} TO {user} first"
            )

    # --- privileges ------------------------------------------------------------------
    granted_names = [r.name for r in roles if not r.owns_everything] + [migrator.name]
    schema_acl: dict[tuple[str, str], set[str]] = {}
    for schema, grantee, priv in _rows(
        conn, SCHEMA_ACL_SQL, {"schemas": schemas, "names": granted_names}
    ):
        schema_acl.setdefault((schema, grantee), set()).add(priv)
    rel_acl: dict[tuple[str, str, str], set[str]] = {}
    for schema, rel, grantee, priv in _rows(
        conn, RELATION_ACL_SQL, {"schemas": schemas, "names": granted_names}
    ):
        rel_acl.setdefault((schema, rel, grantee), set()).add(priv)
    default_acl: dict[tuple[str, str, str], set[str]] = {}
    for schema, objtype, grantee, priv in _rows(
        conn, DEFAULT_ACL_SQL, {"owner": migrator.name, "names": granted_names}
    ):
        default_acl.setdefault((schema, objtype, grantee), set()).add(priv)

    public_have = schema_acl.get(("public", migrator.name), set())
    if not {"USAGE", "CREATE"} <= public_have:
        plan.add(
            f"schema public: USAGE, CREATE to {migrator.name}",
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(_id(migrator.name)),
        )

    for r in roles:
        if r.owns_everything:
            continue
        wanted = {g.schema: g for g in r.grants}
        for schema in schemas:
            g = wanted.get(schema)
            _converge(
                plan,
                have=schema_acl.get((schema, r.name), set()),
                want=set(g.on_schema) if g else set(),
                target=sql.SQL("SCHEMA {}").format(_id(schema)),
                on=f"schema {schema}",
                grantee=r.name,
            )
            for rschema, rel, kind, _owner, _attached in relations:
                if rschema != schema:
                    continue
                want = set((g.on_sequences if kind == "S" else g.on_tables) if g else ())
                if kind in ("v", "m"):
                    want &= {"SELECT"}
                _converge(
                    plan,
                    have=rel_acl.get((schema, rel, r.name), set()),
                    want=want,
                    target=sql.SQL("{} {}").format(
                        sql.SQL("SEQUENCE" if kind == "S" else "TABLE"), _id(schema, rel)
                    ),
                    on=f"{schema}.{rel}",
                    grantee=r.name,
                )
            for objtype, keyword, privs in (
                ("r", "TABLES", g.on_tables if g else ()),
                ("S", "SEQUENCES", g.on_sequences if g else ()),
            ):
                have = default_acl.get((schema, objtype, r.name), set())
                prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} ").format(
                    _id(migrator.name), _id(schema)
                )
                add, drop = set(privs) - have, have - set(privs)
                if add:
                    plan.add(
                        f"future {keyword.lower()} in {schema}: "
                        f"{', '.join(sorted(add))} to {r.name}",
                        prefix
                        + sql.SQL("GRANT {} ON {} TO {}").format(
                            _kw(sorted(add)), sql.SQL(keyword), _id(r.name)
                        ),
                    )
                if drop:
                    plan.add(
                        f"future {keyword.lower()} in {schema}: "
                        f"revoke {', '.join(sorted(drop))} from {r.name}",
                        prefix
                        + sql.SQL("REVOKE {} ON {} FROM {}").format(
                            _kw(sorted(drop)), sql.SQL(keyword), _id(r.name)
                        ),
                    )
    # --- functions PUBLIC may not run (an extension's, such as pg_stat_statements_reset);
    # absent until the extension is created, then planned by the next run
    for r in roles:
        if not r.execute:
            continue
        for signature, granted in _rows(
            conn, FUNCTION_ACL_SQL, {"role": r.name, "names": list(r.execute)}
        ):
            if not granted:
                plan.add(
                    f"function {signature}: EXECUTE to {r.name}",
                    sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                        sql.SQL(signature), _id(r.name)
                    ),
                )
    return plan


def _converge(plan: Plan, *, have: set[str], want: set[str], target, on: str, grantee: str) -> None:
    """Grant or revoke the difference; ``on`` names the object in the change's summary
    (SQL vocabulary and identifiers, the same in every language)."""
    add, drop = want - have, have - want
    if add:
        plan.add(
            f"{on}: {', '.join(sorted(add))} to {grantee}",
            sql.SQL("GRANT {} ON {} TO {}").format(_kw(sorted(add)), target, _id(grantee)),
        )
    if drop:
        plan.add(
            f"{on}: revoke {', '.join(sorted(drop))} from {grantee}",
            sql.SQL("REVOKE {} ON {} FROM {}").format(_kw(sorted(drop)), target, _id(grantee)),
        )
