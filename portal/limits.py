"""Time bounds on the database work of a web request, and what to say when one is hit.

Two layers:

- **The web process's connections.** Under gunicorn (``gunicorn.conf.py`` sets
  ``PORTAL_WEB_PROCESS=1`` before the workers load the application), every connection
  the portal opens starts with ``statement_timeout``, ``lock_timeout`` and
  ``idle_in_transaction_session_timeout`` set by libpq's ``options`` (``web_options``):
  no statement a request runs, from the session lookup to the last template tag, waits
  or runs longer than those. Management commands (``migrate``, ``seed_demo``,
  ``snapshot_stats``) never see them: they do not run under gunicorn.
- **Work with a bound of its own.** :func:`statement_limits` gives every statement of a
  block shorter limits (a list, a change page shown, the lock-holder lookup);
  :func:`degrade` is the same for one panel of a page (the dashboard's, the session
  page's story), turning a timeout or a lock wait into the panel's "unavailable:
  <reason>" instead of failing the page. :func:`bounded` is the transaction form, for
  work that must commit or roll back as one (a save).

:func:`describe` turns a cancelled statement into a sentence a person can act on, naming
the session that holds the lock (``pg_locks``) when the statement gave up waiting for one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils.formats import get_format
from django.utils.translation import gettext
from psycopg.pq import TransactionStatus

#: Set by gunicorn.conf.py: the process serves web requests.
WEB_PROCESS_ENV = "PORTAL_WEB_PROCESS"

QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"

_IDLE = TransactionStatus.IDLE


def is_web_process() -> bool:
    return os.environ.get(WEB_PROCESS_ENV) == "1"


def web_options(statement_ms: int, lock_ms: int, idle_in_transaction_ms: int) -> str:
    """libpq ``options`` that bound every statement of a connection."""
    return (
        f"-c statement_timeout={int(statement_ms)} -c lock_timeout={int(lock_ms)} "
        f"-c idle_in_transaction_session_timeout={int(idle_in_transaction_ms)}"
    )


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, whether Django wrapped it or not."""
    for candidate in (exc, exc.__cause__):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


def is_timeout(exc: BaseException) -> bool:
    """A statement cancelled by ``statement_timeout`` or ``lock_timeout``."""
    return sqlstate(exc) in {QUERY_CANCELED, LOCK_NOT_AVAILABLE}


def starts_bounded(statement_ms: int, lock_ms: int, using: str = "default") -> bool:
    """Whether every statement on ``using`` already runs within these limits, with no
    SET of its own: a web process's connections start with the web bounds
    (``web_options``), and outside a transaction no ``SET LOCAL`` can have changed them."""
    connection = connections[using]
    if connection.in_atomic_block:
        return False
    options = f"{connection.settings_dict.get('OPTIONS', {}).get('options', '')} "
    return (
        f"-c statement_timeout={int(statement_ms)} " in options
        and f"-c lock_timeout={int(lock_ms)} " in options
    )


def _set_limits(using: str, statement_ms: int, lock_ms: int) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %(s)s, true), "
            "set_config('lock_timeout', %(l)s, true)",
            {"s": f"{int(statement_ms)}ms", "l": f"{int(lock_ms)}ms"},
        )


@contextlib.contextmanager
def bounded(statement_ms: int, lock_ms: int, using: str = "default") -> Iterator[None]:
    """A savepoint (or transaction) in which every statement has these local limits."""
    with transaction.atomic(using=using):
        _set_limits(using, statement_ms, lock_ms)
        yield


#: The connection attribute holding the limits of the open :func:`statement_limits`
#: blocks, innermost last.
_LIMITS = "_portal_statement_limits"


@contextlib.contextmanager
def statement_limits(statement_ms: int, lock_ms: int, using: str = "default") -> Iterator[None]:
    """Every statement on ``using`` inside the block runs within these limits.

    Outside a transaction (a web request is served in autocommit), the limits travel
    with each statement: ``SET LOCAL statement_timeout = ...; SET LOCAL lock_timeout =
    ...; <the statement>`` goes to the server as one message, which PostgreSQL runs as
    one implicit transaction. The settings end with it, and since PostgreSQL 13 each
    statement of such a message has its own timeout. No transaction is opened, no round
    trip added, nothing is left to put back; a statement that fails leaves nothing
    aborted behind it. A transaction opened inside the block gets the limits with its
    first statement, so a ``SET LOCAL`` of its own (a shorter walk) then holds.

    Inside a transaction (a test's, a save's), the block is :func:`bounded`'s savepoint:
    a statement PostgreSQL refuses must not poison the outer transaction.
    """
    connection = connections[using]
    if connection.in_atomic_block or connection.settings_dict.get("OPTIONS", {}).get(
        "server_side_binding"
    ):
        # Several statements in one message need client-side binding (Django's default
        # for psycopg): with server-side binding, each statement is its own message.
        with bounded(statement_ms, lock_ms, using):
            yield
        return
    stack: list[tuple[int, int]] = connection.__dict__.setdefault(_LIMITS, [])
    stack.append((int(statement_ms), int(lock_ms)))
    try:
        if len(stack) == 1:
            with connection.execute_wrapper(_with_limits(connection, stack)):
                yield
        else:
            yield  # the outer block's wrapper applies the innermost limits
    finally:
        stack.pop()


def _with_limits(connection: Any, stack: list[tuple[int, int]]) -> Any:
    def execute(run: Any, sql: Any, params: Any, many: bool, context: dict) -> Any:
        raw = connection.connection
        # In a transaction already under way, its first statement set the limits (and
        # whatever it set since must hold). executemany, composed SQL and server-side
        # cursors (Django's iterator(): DECLARE ... CURSOR FOR takes one statement) go
        # as they are, within the connection's own limits (under gunicorn, the web
        # bounds).
        cursor = context["cursor"].cursor
        starts_own = raw.autocommit or raw.info.transaction_status == _IDLE
        one_message = isinstance(cursor, psycopg.ClientCursor)
        if many or not starts_own or not one_message or not isinstance(sql, str):
            return run(sql, params, many, context)
        statement_ms, lock_ms = stack[-1]
        result = run(
            f"SET LOCAL statement_timeout = {statement_ms}; "
            f"SET LOCAL lock_timeout = {lock_ms}; {sql}",
            params,
            many,
            context,
        )
        # The two SETs' results come first; the caller reads its own statement's.
        cursor.nextset()
        cursor.nextset()
        return result

    return execute


@dataclass
class Unavailable:
    """Why a panel shows no figures."""

    reason: str

    def __str__(self) -> str:
        return gettext("unavailable: %(reason)s") % {"reason": self.reason}


@contextlib.contextmanager
def degrade(
    context: dict[str, Any],
    key: str,
    *,
    statement_ms: int | None = None,
    lock_ms: int | None = None,
    tables: Iterable[str] = (),
    using: str = "default",
) -> Iterator[None]:
    """Run one panel's queries under the panel limits; on a timeout, a lock wait or a
    refusal by the server, ``context[key]`` becomes an :class:`Unavailable` and the
    rest of the page renders. A lost connection is not swallowed: the whole page
    answers "database unavailable" (:mod:`portal.outage`)."""
    statement_ms = settings.PANEL_STATEMENT_TIMEOUT_MS if statement_ms is None else statement_ms
    lock_ms = settings.PANEL_LOCK_TIMEOUT_MS if lock_ms is None else lock_ms
    try:
        with statement_limits(statement_ms, lock_ms, using):
            yield
    except DatabaseError as exc:
        if not is_timeout(exc) and not is_refusal(exc):
            raise
        context[key] = Unavailable(
            describe(exc, statement_ms=statement_ms, lock_ms=lock_ms, tables=tables, using=using)
        )


def is_refusal(exc: BaseException) -> bool:
    """An error of the statement, not of the connection (privileges, a bad plan...)."""
    state = sqlstate(exc)
    return state is not None and state[:2] not in {"08", "53", "57", "58", "XX"}


# --- what to tell the user -------------------------------------------------------------

#: Granted relation locks that make another session's reads or writes wait.
_BLOCKING_MODES = (
    "AccessExclusiveLock",
    "ExclusiveLock",
    "ShareRowExclusiveLock",
    "ShareLock",
)

LOCK_HOLDERS = """
SELECT l.pid, n.nspname, c.relname, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.granted
  AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode = ANY(%(modes)s)
  AND (cardinality(%(tables)s::text[]) = 0 OR n.nspname || '.' || c.relname = ANY(%(tables)s))
ORDER BY l.mode = 'AccessExclusiveLock' DESC, l.pid
LIMIT 3
"""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    table: str
    mode: str


def table_name(db_table: str) -> str:
    """``core"."projects`` (a model's db_table) as ``core.projects``."""
    return db_table.replace('"."', ".") if '"."' in db_table else f"public.{db_table}"


def lock_holders(tables: Iterable[str] = (), using: str = "default") -> list[LockHolder]:
    """Sessions holding a lock that blocks others on ``tables`` (``schema.table``).

    Asked after the waiting statement gave up, with short limits of its own; an empty
    list when the catalog cannot be read either."""
    names = [table_name(t) if "." not in t or '"."' in t else t for t in tables]
    try:
        with statement_limits(1000, 200, using), connections[using].cursor() as cursor:
            cursor.execute(LOCK_HOLDERS, {"modes": list(_BLOCKING_MODES), "tables": names})
            return [LockHolder(pid, f"{schema}.{rel}", mode) for pid, schema, rel, mode in cursor]
    except DatabaseError:
        return []


def _seconds(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:g}".replace(".", str(get_format("DECIMAL_SEPARATOR"))) + " s"


def describe(
    exc: BaseException,
    *,
    statement_ms: int,
    lock_ms: int,
    tables: Iterable[str] = (),
    using: str = "default",
) -> str:
    """One sentence: what stopped the statement, and who holds the lock if it was one."""
    state = sqlstate(exc)
    if state == LOCK_NOT_AVAILABLE:
        holders = lock_holders(tables, using)
        if holders:
            held = "; ".join(
                gettext("pid %(pid)s holds %(mode)s on %(table)s")
                % {"pid": h.pid, "mode": h.mode, "table": h.table}
                for h in holders
            )
            return gettext("waited longer than %(limit)s for a lock (%(held)s)") % {
                "limit": _seconds(lock_ms),
                "held": held,
            }
        return gettext("waited longer than %(limit)s for a lock held by another session") % {
            "limit": _seconds(lock_ms)
        }
    if state == QUERY_CANCELED:
        return gettext("the query took longer than %(limit)s and was stopped") % {
            "limit": _seconds(statement_ms)
        }
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return gettext("the database refused the query (%(error)s)") % {"error": text}
