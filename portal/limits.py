"""Time bounds on the database work of a web request, and what to say when one is hit.

Two layers:

- **The web process's connections.** Under gunicorn (``gunicorn.conf.py`` sets
  ``PORTAL_WEB_PROCESS=1`` before the workers load the application), every connection
  the portal opens starts with ``statement_timeout``, ``lock_timeout`` and
  ``idle_in_transaction_session_timeout`` set by libpq's ``options`` (``web_options``):
  no statement a request runs, from the session lookup to the last template tag, waits
  or runs longer than those. Management commands (``migrate``, ``seed_demo``,
  ``snapshot_stats``) never see them: they do not run under gunicorn.
- **Pages with a bound of their own.** :func:`bounded` sets shorter local limits for one
  savepoint (the dashboard's panels, a change page, a list); :func:`degrade` is the same
  for one panel of a page, turning a timeout or a lock wait into the panel's
  "unavailable: <reason>" instead of failing the page.

:func:`describe` turns a cancelled statement into a sentence a person can act on, naming
the session that holds the lock (``pg_locks``) when the statement gave up waiting for one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils.formats import get_format
from django.utils.translation import gettext

#: Set by gunicorn.conf.py: the process serves web requests.
WEB_PROCESS_ENV = "PORTAL_WEB_PROCESS"

QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"


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


@dataclass
class Unavailable:
    """Why a panel shows no figures."""

    reason: str

    def __str__(self) -> str:
        return gettext("unavailable: %(reason)s") % {"reason": self.reason}


#: The connection attribute naming the limits :func:`panel_page` set for its session.
_PAGE_LIMITS = "_portal_page_limits"


@contextlib.contextmanager
def panel_page(using: str = "default") -> Iterator[None]:
    """A page of panels (the dashboard): the panel limits set once for the session, so
    each :func:`degrade` panel inside runs its statements as they are, in autocommit,
    without a transaction and a SET of its own (three round trips a panel), each
    statement's locks released as soon as it ends. The session's previous limits are
    put back after.

    Inside a transaction (a test's, or any caller's), nothing changes: each panel keeps
    its savepoint and ``SET LOCAL``, since one failed statement would abort the rest.
    """
    connection = connections[using]
    if connection.in_atomic_block or getattr(connection, _PAGE_LIMITS, None):
        yield
        return
    limits = (settings.PANEL_STATEMENT_TIMEOUT_MS, settings.PANEL_LOCK_TIMEOUT_MS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
            "set_config('statement_timeout', %(s)s, false), "
            "set_config('lock_timeout', %(l)s, false)",
            {"s": f"{limits[0]}ms", "l": f"{limits[1]}ms"},
        )
        before = cursor.fetchone()[:2]
    setattr(connection, _PAGE_LIMITS, limits)
    try:
        yield
    finally:
        setattr(connection, _PAGE_LIMITS, None)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %(s)s, false), "
                    "set_config('lock_timeout', %(l)s, false)",
                    {"s": before[0], "l": before[1]},
                )
        except DatabaseError:
            # Limits that could not be put back must not reach the next request.
            connection.close()


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
    connection = connections[using]
    try:
        if (
            getattr(connection, _PAGE_LIMITS, None) == (statement_ms, lock_ms)
            and not connection.in_atomic_block
        ):
            yield  # the session already has these limits (panel_page)
        else:
            with bounded(statement_ms, lock_ms, using):
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

    Asked after the waiting statement gave up, in a savepoint with short limits of its
    own; an empty list when the catalog cannot be read either."""
    names = [table_name(t) if "." not in t or '"."' in t else t for t in tables]
    try:
        with bounded(1000, 200, using), connections[using].cursor() as cursor:
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
