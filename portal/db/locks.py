"""Lock-safe DDL: short lock waits, retries, and who to blame when they run out.

PostgreSQL queues lock requests: an ALTER TABLE waiting for ACCESS EXCLUSIVE behind
one idle transaction makes every later reader and writer of that table wait behind
*it*. So every statement the schema editor runs gets a short ``lock_timeout``: it
either gets its lock quickly or fails, and traffic never waits longer than that.
A failed attempt is retried after a backoff (the whole migration when it is atomic:
a failed statement aborts its transaction); when the retries run out the migration
fails with the sessions that held the lock (from ``pg_blocking_pids`` and
``pg_stat_activity``, taken while the statement was still waiting) and what to do.

Statements are classed with PostgreSQL's own grammar (pglast):

- *weak*: locks that block neither reads nor writes (``CREATE INDEX CONCURRENTLY``,
  ``DROP INDEX CONCURRENTLY``, ``VALIDATE CONSTRAINT``). Waiting is harmless for
  traffic, and ``CONCURRENTLY`` must wait for every older transaction, so they get a
  long lock timeout (``MIGRATION_WEAK_LOCK_TIMEOUT``) instead of the short one.
- *catalog-only*: DDL that neither rewrites nor scans the table (add a nullable column
  or one with a constant default, drop a column, set or drop a default, add a
  constraint ``NOT VALID``, create or drop a table, rename, comment). Besides the lock
  timeout these get ``statement_timeout`` (``MIGRATION_STATEMENT_TIMEOUT``): once such
  a statement holds its lock it must finish at once, so a slow one is a mistake.
- everything else (a rewrite, a validating scan, data changes) gets the lock timeout
  only: how long it takes once it has the lock is the migration's design (the linter's
  business), not something a timeout should cut short half-way.

Settings (seconds): ``MIGRATION_LOCK_TIMEOUT`` (2), ``MIGRATION_WEAK_LOCK_TIMEOUT``
(300), ``MIGRATION_STATEMENT_TIMEOUT`` (5), ``MIGRATION_LOCK_RETRIES`` (5),
``MIGRATION_RETRY_BACKOFF`` (1, doubled per retry, at most 30);
``MIGRATION_LOCK_SAFETY = False`` turns it all off.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pglast
import psycopg
from django.conf import settings
from django.core.management.base import CommandError

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout
QUERY_CANCELED = "57014"  # statement_timeout (or a cancel)

WEAK = "weak"
CATALOG_ONLY = "catalog-only"
HEAVY = "heavy"


@dataclass(frozen=True)
class Policy:
    enabled: bool = True
    lock_timeout: float = 2.0
    weak_lock_timeout: float = 300.0
    statement_timeout: float = 5.0
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    # None, "cancel" or "terminate": what to do to blockers before a retry.
    blocker_action: str | None = None
    # Called with one line of progress (the migrate command's stdout).
    say: Any = None

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            enabled=getattr(settings, "MIGRATION_LOCK_SAFETY", True),
            lock_timeout=float(getattr(settings, "MIGRATION_LOCK_TIMEOUT", 2.0)),
            weak_lock_timeout=float(getattr(settings, "MIGRATION_WEAK_LOCK_TIMEOUT", 300.0)),
            statement_timeout=float(getattr(settings, "MIGRATION_STATEMENT_TIMEOUT", 5.0)),
            retries=int(getattr(settings, "MIGRATION_LOCK_RETRIES", 5)),
            backoff=float(getattr(settings, "MIGRATION_RETRY_BACKOFF", 1.0)),
        )

    def delay(self, attempt: int) -> float:
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)

    def note(self, text: str) -> None:
        if self.say is not None:
            self.say(text)


_policy: contextvars.ContextVar[Policy | None] = contextvars.ContextVar(
    "migration_lock_policy", default=None
)


def current_policy() -> Policy:
    policy = _policy.get()
    return policy if policy is not None else Policy.from_settings()


@contextlib.contextmanager
def using_policy(policy: Policy) -> Iterator[Policy]:
    token = _policy.set(policy)
    try:
        yield policy
    finally:
        _policy.reset(token)


def with_overrides(**changes: Any) -> Policy:
    return replace(current_policy(), **changes)


# --- classification ------------------------------------------------------------------

# ALTER TABLE subcommands that touch only the catalog (no rewrite, no scan) on
# PostgreSQL 11+, as long as an added column has no volatile default.
_CATALOG_ONLY_ALTERS = {
    "AT_AddColumn",
    "AT_DropColumn",
    "AT_ColumnDefault",
    "AT_DropNotNull",
    "AT_DropConstraint",
    "AT_SetStatistics",
    "AT_SetOptions",
    "AT_ResetOptions",
    "AT_SetRelOptions",
    "AT_ResetRelOptions",
    "AT_ChangeOwner",
    "AT_AddIdentity",
    "AT_DropIdentity",
    "AT_ReplicaIdentity",
    "AT_EnableTrig",
    "AT_DisableTrig",
    "AT_EnableAlwaysTrig",
}
_CATALOG_ONLY_STATEMENTS = {
    "CreateStmt",
    "CreateSchemaStmt",
    "RenameStmt",
    "CommentStmt",
    "ViewStmt",
    "CreateTrigStmt",
    "CreateFunctionStmt",
    "GrantStmt",
    "AlterOwnerStmt",
    "VariableSetStmt",
    "ConstraintsSetStmt",
    "AlterObjectSchemaStmt",
    "AlterDefaultPrivilegesStmt",
}
# Defaults that are computed once for the whole ALTER (stable), so PostgreSQL stores
# them without a rewrite. Any other function call is treated as volatile.
_STABLE_DEFAULT_FUNCTIONS = {"now", "statement_timestamp", "transaction_timestamp", "current_date"}


def _has_volatile_default(column: Any) -> bool:
    for con in column.constraints or ():
        kind = con.contype.name
        if kind in ("CONSTR_IDENTITY", "CONSTR_GENERATED"):
            return True
        if kind == "CONSTR_DEFAULT" and con.raw_expr is not None:
            calls = [n for n in _walk(con.raw_expr) if type(n).__name__ == "FuncCall"]
            for call in calls:
                name = call.funcname[-1].sval.lower()
                if name not in _STABLE_DEFAULT_FUNCTIONS:
                    return True
    return False


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
        return
    for slot in getattr(node, "__slots__", ()):
        value = getattr(node, slot, None)
        if value is not None and (isinstance(value, tuple | list) or hasattr(value, "__slots__")):
            yield from _walk(value)


def _statement_class(stmt: Any) -> str:
    node = type(stmt).__name__
    if node == "IndexStmt":
        return WEAK if stmt.concurrent else HEAVY
    if node == "DropStmt":
        return WEAK if stmt.concurrent else CATALOG_ONLY
    if node == "ReindexStmt":
        params = [p.defname for p in stmt.params or ()]
        return WEAK if "concurrently" in params else HEAVY
    if node == "AlterTableStmt":
        kinds = set()
        for cmd in stmt.cmds or ():
            sub = cmd.subtype.name
            if sub == "AT_ValidateConstraint":
                kinds.add(WEAK)
            elif sub == "AT_AddColumn":
                kinds.add(HEAVY if _has_volatile_default(cmd.def_) else CATALOG_ONLY)
            elif sub == "AT_AddConstraint":
                con = cmd.def_
                not_valid = con.skip_validation and con.contype.name in (
                    "CONSTR_CHECK",
                    "CONSTR_FOREIGN",
                )
                using_index = bool(getattr(con, "indexname", None))
                kinds.add(CATALOG_ONLY if not_valid or using_index else HEAVY)
            elif sub in _CATALOG_ONLY_ALTERS:
                kinds.add(CATALOG_ONLY)
            else:
                kinds.add(HEAVY)
        if kinds == {WEAK}:
            return WEAK
        return HEAVY if HEAVY in kinds or WEAK in kinds else CATALOG_ONLY
    if node in _CATALOG_ONLY_STATEMENTS:
        return CATALOG_ONLY
    return HEAVY


def classify(sql: str) -> str:
    """The class of a piece of SQL: the heaviest of its statements."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return HEAVY
    classes = {_statement_class(raw.stmt) for raw in statements}
    if not classes:
        return CATALOG_ONLY
    if HEAVY in classes:
        return HEAVY
    return WEAK if WEAK in classes else CATALOG_ONLY


def concurrent_index(sql: str) -> tuple[str | None, str] | None:
    """(schema, name) of the index a ``CREATE INDEX CONCURRENTLY`` builds, else None."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return None
    for raw in statements:
        stmt: Any = raw.stmt
        if type(stmt).__name__ == "IndexStmt" and stmt.concurrent and stmt.idxname:
            return stmt.relation.schemaname, stmt.idxname
    return None


def timeouts_for(sql: str, policy: Policy) -> tuple[float, float | None]:
    """(lock_timeout, statement_timeout or None for "leave it") in seconds."""
    kind = classify(sql)
    if kind == WEAK:
        return policy.weak_lock_timeout, None
    if kind == CATALOG_ONLY:
        return policy.lock_timeout, policy.statement_timeout
    return policy.lock_timeout, None


# --- who holds the lock ------------------------------------------------------------------

BLOCKERS = """
SELECT a.pid, a.application_name, a.usename, a.client_addr::text, a.state,
       a.xact_start, a.state_change, a.query,
       ARRAY(SELECT DISTINCT l.relation::regclass::text || ' ' || l.mode
               FROM pg_locks l
              WHERE l.pid = a.pid AND l.granted AND l.relation IS NOT NULL
              ORDER BY 1)
  FROM pg_stat_activity a
 WHERE a.pid = ANY(pg_blocking_pids(%(pid)s))
 ORDER BY a.xact_start NULLS LAST
"""

# What this migrate was waiting for, to name the table in the report.
WAITING_FOR = """
SELECT l.relation::regclass::text, l.mode
  FROM pg_locks l WHERE l.pid = %(pid)s AND NOT l.granted
"""


def mask_literals(query: str, limit: int = 300) -> str:
    """The query with its string and number constants replaced by '?': a blocker's
    query may carry values (an email, a token) that a job log must not show."""
    try:
        tokens = pglast.parser.scan(query)
    except pglast.parser.ParseError:
        return "(query not shown: it does not parse)"
    out, last = [], 0
    for token in tokens:
        if token.name in ("SCONST", "ICONST", "FCONST", "BCONST", "XCONST", "USCONST"):
            out.append(query[last : token.start])
            out.append("?")
            last = token.end + 1
    out.append(query[last:])
    text = " ".join("".join(out).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Blocker:
    pid: int
    application_name: str
    user: str
    client: str | None
    state: str
    xact_start: Any
    state_change: Any
    query: str
    locks: tuple[str, ...]

    def line(self) -> str:
        since = self.xact_start.isoformat(timespec="seconds") if self.xact_start else "-"
        app = self.application_name or "(no application_name)"
        return (
            f"pid {self.pid} {app} (user {self.user}, {self.client or 'local'}): "
            f"{self.state}, transaction open since {since}; holds "
            f"{', '.join(self.locks) or 'no table locks'}; last query: {self.query}"
        )


@dataclass
class Snapshot:
    waiting_for: list[str] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)


def side_connection_params(connection: Any) -> dict[str, Any]:
    params = dict(connection.get_connection_params())
    for key in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(key, None)
    params["autocommit"] = True
    options = params.pop("options", None)
    params["application_name"] = "portal-migrate-watch"
    if options:
        params["options"] = options
    return params


def snapshot_blockers(params: dict[str, Any], pid: int) -> Snapshot:
    """Who blocks server process ``pid`` right now, from a connection of its own."""
    snap = Snapshot()
    with psycopg.connect(**params) as side:
        for relation, mode in side.execute(WAITING_FOR, {"pid": pid}).fetchall():
            snap.waiting_for.append(f"{mode} on {relation}" if relation else mode)
        for row in side.execute(BLOCKERS, {"pid": pid}).fetchall():
            snap.blockers.append(
                Blocker(
                    pid=row[0],
                    application_name=row[1] or "",
                    user=row[2] or "",
                    client=row[3],
                    state=row[4] or "",
                    xact_start=row[5],
                    state_change=row[6],
                    query=mask_literals(row[7] or ""),
                    locks=tuple(row[8] or ()),
                )
            )
    return snap


class Watch:
    """While one statement runs: after half its lock timeout, note who blocks it."""

    def __init__(self, params: dict[str, Any], pid: int, delay: float):
        self.params, self.pid = params, pid
        self.snapshot: Snapshot | None = None
        self.error: str | None = None
        self._timer = threading.Timer(delay, self._take)
        self._timer.daemon = True

    def _take(self) -> None:
        try:
            self.snapshot = snapshot_blockers(self.params, self.pid)
        except psycopg.Error as exc:
            self.error = str(exc).strip()

    def __enter__(self) -> Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if self._timer.is_alive():
            self._timer.join(timeout=10)


class LockTimeout(Exception):
    """One attempt at a statement gave up waiting for its lock."""

    def __init__(self, sql: str, snapshot: Snapshot | None, cause: Exception):
        super().__init__(str(cause).strip())
        self.sql = sql
        self.snapshot = snapshot
        self.cause = cause


class MigrationBlocked(CommandError):
    """The retries ran out: the report says who held the lock and what to do."""


def report(
    migration: str, timeout: LockTimeout, policy: Policy, attempts: int, atomic: bool
) -> str:
    lines = [
        f"{migration}: gave up after {attempts} attempts; each waited "
        f"{policy.lock_timeout:g} s for a lock ({timeout}).",
        f"Statement: {' '.join(timeout.sql.split())[:300]}",
    ]
    snap = timeout.snapshot
    if snap and snap.waiting_for:
        lines.append("Waiting for: " + "; ".join(snap.waiting_for))
    if snap and snap.blockers:
        lines.append("Held by:")
        lines.extend("  " + b.line() for b in snap.blockers)
        pids = ", ".join(str(b.pid) for b in snap.blockers)
        lines.append(
            "Action: end those sessions' transactions (an idle-in-transaction session "
            "holds its locks until it commits, rolls back or disconnects), then run "
            "migrate again; or run migrate --terminate-blockers to end them "
            f"(SELECT pg_terminate_backend(pid) for pid in {pids})."
        )
    else:
        lines.append(
            "Held by: not caught (the lock was released or the watch could not connect). "
            "Action: look at pg_stat_activity for long transactions on that table and "
            "run migrate again."
        )
    lines.append(
        "Nothing of this migration was applied (it is atomic)."
        if atomic
        else "This migration is not atomic: its statements before this one stay applied."
    )
    return "\n".join(lines)


TERMINATE = "SELECT pg_terminate_backend(%(pid)s)"
CANCEL = "SELECT pg_cancel_backend(%(pid)s)"


def end_blockers(connection: Any, policy: Policy, timeout: LockTimeout, migration: str) -> None:
    """``--cancel-blockers`` / ``--terminate-blockers``: audit, then signal each blocker.
    Without an audit record nothing is signalled."""
    action = policy.blocker_action
    snap = timeout.snapshot
    if action is None or snap is None or not snap.blockers:
        return
    from audit.services import record_activity

    signal = TERMINATE if action == "terminate" else CANCEL
    for blocker in snap.blockers:
        try:
            record_activity(
                action=f"migrate.{action}_blocker",
                resource_type="pg_backend",
                resource_id=str(blocker.pid),
                object_repr=blocker.application_name or f"pid {blocker.pid}",
                details={
                    "migration": migration,
                    "waiting_for": snap.waiting_for,
                    "blocker": blocker.line(),
                },
            )
        except Exception as exc:
            raise MigrationBlocked(
                f"{migration}: not ending blocker pid {blocker.pid}: its audit record "
                f"could not be written ({exc})"
            ) from exc
        with connection.cursor() as cursor:
            cursor.execute(signal, {"pid": blocker.pid})
            done = cursor.fetchone()[0]
        verb = "terminated" if action == "terminate" else "cancelled the query of"
        policy.note(
            f"  {verb} blocker pid {blocker.pid} ({blocker.application_name or '-'})"
            + ("" if done else ": it had already gone")
        )


def is_lock_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return getattr(cause, "sqlstate", None) == LOCK_NOT_AVAILABLE
