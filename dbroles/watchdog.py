"""The Metabase watchdog: undo, on a schedule, what a SQL-editor session can do to itself.

PostgreSQL lets any session change its user-settable parameters (``SET statement_timeout
= 0``, ``set_config(...)``, ``SET TRANSACTION READ WRITE``) and lets any role ``ALTER
ROLE`` itself ``SET`` them for its future sessions. Grants cannot stop that, so on the
primary this runs every few minutes (a Cloud Run job, like ``snapshot_stats``) and:

- cancels the login role's statements running longer than its statement timeout
  (``pg_cancel_backend``) and ends its sessions idle in a transaction longer than its
  idle-in-transaction timeout (``pg_terminate_backend``): the limits it may have lifted
  for itself;
- unlinks the large objects the roles own (created where PUBLIC still could);
- converges the roles like ``metabase_access`` (resets settings the role gave itself,
  revokes anything extra, takes back SELECT on a new view over auth or audit), without
  touching the password;
- records each action in the audit trail (``audit.services.record_activity``).

It runs as the role that runs ``metabase_access`` (the tables' owner, able to manage the
Metabase roles). Signalling another role's backend needs superuser or membership of
``pg_signal_backend`` (which Cloud SQL's ``cloudsqlsuperuser`` has); a non-superuser
unlinks another role's large object through a membership granted and revoked inside the
same transaction, so nobody ever sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from dbroles import metabase
from dbroles.metabase import AccessConfig, PasswordState

# The role's backends past a limit. ``query_start`` is when the running statement began
# (state active), ``state_change`` when the session went idle in its transaction.
OVERDUE_SQL = """
SELECT a.pid, a.state,
       (EXTRACT(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start
                                        ELSE a.state_change END) * 1000)::bigint AS ms
FROM pg_catalog.pg_stat_activity a
WHERE a.usename = %(role)s AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND ((a.state = 'active' AND now() - a.query_start > %(statement_ms)s * interval '1 ms')
    OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
        AND now() - a.state_change > %(idle_ms)s * interval '1 ms'))
ORDER BY a.pid
"""

LARGE_OBJECTS_SQL = """
SELECT lo.oid::bigint, r.rolname::text
FROM pg_catalog.pg_largeobject_metadata lo
JOIN pg_catalog.pg_roles r ON r.oid = lo.lomowner
WHERE r.rolname = ANY(%(names)s)
ORDER BY 1
"""


@dataclass(frozen=True)
class Action:
    kind: str  # cancel | terminate | unlink | converge | error
    summary: str
    details: dict


def run(conn: psycopg.Connection, config: AccessConfig) -> list[Action]:
    """One pass of the watchdog on ``conn`` (autocommit); the actions taken."""
    actions: list[Action] = []
    with metabase.serialized(conn):
        actions += _signal_overdue(conn, config)
        actions += _unlink_large_objects(conn, config)
        actions += _converge(conn, config)
    return actions


def _signal_overdue(conn: psycopg.Connection, config: AccessConfig) -> list[Action]:
    actions = []
    with conn.cursor() as cur:
        cur.execute(
            OVERDUE_SQL,
            {
                "role": config.login_role,
                "statement_ms": config.statement_timeout_ms,
                "idle_ms": config.idle_in_transaction_timeout_ms,
            },
        )
        overdue = cur.fetchall()
        for pid, state, ms in overdue:
            active = state == "active"
            kind = "cancel" if active else "terminate"
            function = "pg_cancel_backend" if active else "pg_terminate_backend"
            try:
                cur.execute(
                    sql.SQL("SELECT {}(%(pid)s)").format(sql.Identifier("pg_catalog", function)),
                    {"pid": pid},
                )
                row = cur.fetchone()
                done = bool(row and row[0])
            except errors.InsufficientPrivilege as exc:
                actions.append(
                    Action(
                        "error",
                        f"could not {kind} backend {pid} of {config.login_role}: "
                        f"{metabase.first_line(exc)} (grant pg_signal_backend to the role "
                        "running the watchdog)",
                        {"pid": pid, "state": state},
                    )
                )
                continue
            if not done:
                continue  # the backend ended on its own meanwhile
            limit = config.statement_timeout_ms if active else config.idle_in_transaction_timeout_ms
            what = "statement running" if active else "session idle in transaction"
            actions.append(
                Action(
                    kind,
                    f"{'cancelled' if active else 'ended'} backend {pid} of {config.login_role}: "
                    f"{what} {ms} ms, past its {limit} ms limit",
                    {"pid": pid, "state": state, "elapsed_ms": ms, "limit_ms": limit},
                )
            )
    return actions


def _unlink_large_objects(conn: psycopg.Connection, config: AccessConfig) -> list[Action]:
    names = [config.login_role, config.group_role]
    actions: list[Action] = []
    with conn.cursor() as cur:
        cur.execute(LARGE_OBJECTS_SQL, {"names": names})
        owned = cur.fetchall()
    if not owned:
        return actions
    with conn.transaction(), conn.cursor() as cur:
        for oid, owner in owned:
            try:
                with conn.transaction():
                    cur.execute("SELECT pg_catalog.lo_unlink(%(oid)s::oid)", {"oid": oid})
            except errors.InsufficientPrivilege as exc:
                # Only the owner (or a member inheriting its privileges) may unlink. From
                # 16 a role's creator holds ADMIN OPTION on it (without INHERIT): it grants
                # itself a membership for this transaction, and the REVOKE takes back only
                # that grant (grants are per grantor from 16). Before 16 a REVOKE would
                # take the existing membership too, so it reports instead.
                if metabase.read_session(conn).server_version_num < 160000:
                    actions.append(
                        Action(
                            "error",
                            f"could not unlink large object {oid} of {owner}: "
                            f"{metabase.first_line(exc)} (run as a member of {owner} or a "
                            "superuser)",
                            {"oid": oid, "owner": owner},
                        )
                    )
                    continue
                role = sql.Identifier(owner)
                cur.execute(sql.SQL("GRANT {} TO CURRENT_USER WITH INHERIT TRUE").format(role))
                cur.execute("SELECT pg_catalog.lo_unlink(%(oid)s::oid)", {"oid": oid})
                cur.execute(sql.SQL("REVOKE {} FROM CURRENT_USER").format(role))
            actions.append(
                Action(
                    "unlink",
                    f"unlinked large object {oid} owned by {owner}",
                    {"oid": oid, "owner": owner},
                )
            )
    return actions


def _converge(conn: psycopg.Connection, config: AccessConfig) -> list[Action]:
    with conn.transaction():
        plan = metabase.plan_grant(
            conn, config, password=None, password_state=PasswordState(needs_setting=False)
        )
        metabase.apply(conn, plan)
    return [
        Action("converge", change.summary, {"statement": change.statement.as_string(conn)})
        for change in plan.changes
    ]
