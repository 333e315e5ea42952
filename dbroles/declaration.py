"""The project's database roles, declared once: who owns, who writes, who reads.

``manage.py db_roles`` converges a database to this declaration
(``dbroles/declaration_plan.py``) and prints it as the roles x schemas x privileges
table of docs/audit-and-security.md (``--markdown``; a test keeps the two equal).
The Metabase roles are planned by ``dbroles/metabase.py``; ``db_roles`` calls it with
the migrator as the role whose future tables Metabase may read.

Role names come from the environment (so an existing deployment keeps its names);
the passwords of the login roles too, never from code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: The schemas of the project: Django's own tables (sessions, migrations, axes) live
#: in public, the apps' in theirs.
SCHEMAS = ("public", "auth", "core", "analytics", "audit")
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class SchemaGrant:
    schema: str
    on_schema: tuple[str, ...] = ("USAGE",)
    on_tables: tuple[str, ...] = ()
    on_sequences: tuple[str, ...] = ()


@dataclass(frozen=True)
class DbRole:
    key: str
    name: str
    purpose: str
    login: bool = True
    password_env: str = ""
    member_of: tuple[str, ...] = ()
    grants: tuple[SchemaGrant, ...] = field(default=())
    owns_everything: bool = False
    #: functions (by name, every overload, in any schema: an extension's) it may EXECUTE
    #: although PUBLIC may not
    execute: tuple[str, ...] = ()


def _name(env: str, default: str) -> str:
    return os.environ.get(env) or default


def declared_roles() -> list[DbRole]:
    """The roles, in the order they are created."""
    return [
        DbRole(
            key="migrator",
            name=_name("DB_MIGRATOR_ROLE", "portal_migrator"),
            purpose="runs `migrate` (the Cloud Run migrate job); owns every schema, table, "
            "sequence and function of the project, so only it can alter or drop them or "
            "disable a trigger",
            password_env="DB_MIGRATOR_PASSWORD",  # noqa: S106 - the variable's name
            owns_everything=True,
        ),
        DbRole(
            key="monitoring",
            name=_name("DB_MONITOR_ROLE", "portal_monitor"),
            purpose="the diagnostics pages' statistics (pg_monitor) and their cancel and "
            "terminate actions (pg_signal_backend: never a superuser's session); reads no "
            "table data",
            login=False,
            member_of=("pg_monitor", "pg_signal_backend"),
            # the Queries page's reset of this database's statistics
            execute=("pg_stat_statements_reset",),
            grants=tuple(SchemaGrant(s) for s in SCHEMAS),
        ),
        DbRole(
            key="application",
            name=_name("DB_APP_ROLE", "portal_app"),
            purpose="the web service: reads and writes the data, may only add and read "
            "audit rows, owns nothing",
            password_env="DB_APP_PASSWORD",  # noqa: S106 - the variable's name
            member_of=("monitoring",),  # the diagnostics pages run on its connection
            grants=(
                *(
                    SchemaGrant(s, on_tables=DML, on_sequences=("USAGE", "SELECT"))
                    for s in SCHEMAS
                    if s != "audit"
                ),
                SchemaGrant("audit", on_tables=("SELECT", "INSERT")),
            ),
        ),
    ]


def role(key: str) -> DbRole:
    return next(r for r in declared_roles() if r.key == key)


def markdown() -> str:
    """The roles x schemas x privileges table of docs/audit-and-security.md."""
    roles = declared_roles()
    migrator = role("migrator")
    head = "| role | " + " | ".join(f"`{s}`" for s in SCHEMAS) + " | also |"
    lines = [head, "|---|" + "---|" * len(SCHEMAS) + "---|"]
    for r in roles:
        cells = []
        by_schema = {g.schema: g for g in r.grants}
        for schema in SCHEMAS:
            if r.owns_everything:
                # public belongs to pg_database_owner: the migrator owns its tables
                cells.append(
                    "schema USAGE, CREATE; owns its tables" if schema == "public" else "owner (all)"
                )
                continue
            g = by_schema.get(schema)
            if g is None:
                cells.append("—")
                continue
            parts = [f"schema {', '.join(g.on_schema)}"]
            if g.on_tables:
                parts.append(f"tables {', '.join(g.on_tables)}")
            if g.on_sequences:
                parts.append(f"sequences {', '.join(g.on_sequences)}")
            cells.append("; ".join(parts))
        also = []
        if r.member_of:
            keys = {d.key: d.name for d in roles}
            also.append("member of " + ", ".join(f"`{keys.get(m, m)}`" for m in r.member_of))
        if r.owns_everything:
            also.append("CREATE on the database (each app's schema)")
        if r.execute:
            also.append("EXECUTE " + ", ".join(f"`{f}`" for f in r.execute))
        also.append("LOGIN" if r.login else "NOLOGIN")
        if r.grants and any(g.on_tables for g in r.grants):
            also.append(f"default privileges FOR ROLE `{migrator.name}`")
        lines.append(f"| **{r.key}** `{r.name}` | " + " | ".join(cells) + f" | {'; '.join(also)} |")
    return "\n".join(lines) + "\n"
