"""The one helper that runs diagnostic SQL.

Every statement runs in its own savepoint (or transaction, outside an atomic block)
with a local ``statement_timeout`` and ``lock_timeout``, and the savepoint is always
rolled back: diagnostics only read, and a failure (missing privilege, missing
extension, timeout, lock wait) must never poison the request's transaction. A failure
comes back as a message for the panel that asked, so the rest of the page renders.

The actions (cancel, terminate, reset pg_stat_statements) use the same helper: their
effects live outside the transaction system (a signal, shared memory), so rolling the
savepoint back undoes only the local settings, and a refusal by the server is a
message the caller records in the audit trail.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import Error, connections, transaction
from django.utils.translation import gettext
from psycopg import errors as pg_errors
from psycopg import sql

logger = logging.getLogger(__name__)

R = TypeVar("R")

# Marks the portal's own diagnostic statements, so the Queries page can hide them. It
# goes after the first keyword: pg_stat_statements drops comments before a statement.
MARKER = "/* portal:diagnostics */"
_FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")

SET_LIMITS = (
    "SELECT " + MARKER + " set_config('statement_timeout', %(statement_timeout)s, true),"
    " set_config('lock_timeout', %(lock_timeout)s, true),"
    # Statistics views are cached per transaction (stats_fetch_consistency); inside an
    # outer transaction a second read must not return the first read's numbers.
    " pg_stat_clear_snapshot()"
)


@dataclass(frozen=True)
class Query(Generic[R]):
    """A named statement and the dataclass its rows become (columns map to fields)."""

    name: str
    sql: str | sql.Composable
    row: type[R]
    timeout_ms: int | None = None


@dataclass(frozen=True)
class Result(Generic[R]):
    """Rows of one query, or the message explaining why there are none."""

    rows: tuple[R, ...] = ()
    error: str | None = None
    sqlstate: str | None = None
    #: The server's own words inside ``error`` (see :class:`Failure`).
    error_detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def first(self) -> R | None:
        return self.rows[0] if self.rows else None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)


@dataclass(frozen=True)
class Failure:
    message: str
    sqlstate: str | None = None
    #: The server's own words inside ``message`` (PostgreSQL's error text, in the
    #: server's language): pages show them as quoted data, not as the portal's text.
    detail: str | None = None


def _cause(exc: BaseException) -> BaseException:
    return exc.__cause__ if exc.__cause__ is not None else exc


def explain_error(exc: BaseException, *, statement_timeout: int, lock_timeout: int) -> Failure:
    """Translate a database error into one sentence a person can act on."""
    cause = _cause(exc)
    sqlstate = getattr(cause, "sqlstate", None)
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if isinstance(cause, pg_errors.QueryCanceled):
        return Failure(
            gettext(
                "Gave up after %(ms)s ms (statement_timeout); the server is busy or the catalog "
                "is very large. Reload to try again."
            )
            % {"ms": statement_timeout},
            sqlstate,
        )
    if isinstance(cause, pg_errors.LockNotAvailable):
        return Failure(
            gettext(
                "Gave up after waiting %(ms)s ms for a lock (lock_timeout): another session "
                "holds a conflicting lock, typically DDL. See the Blocking page."
            )
            % {"ms": lock_timeout},
            sqlstate,
        )
    if isinstance(cause, pg_errors.InsufficientPrivilege):
        return Failure(
            gettext("The database refused: %(error)s. See the Privileges page.") % {"error": text},
            sqlstate,
            text,
        )
    # No SQLSTATE: the connection itself failed; 08/28/3D/57: connection, authentication,
    # unknown database, shutdown.
    if sqlstate is None or sqlstate[:2] in {"08", "28", "3D", "57"}:
        return Failure(
            gettext("Cannot reach the database: %(error)s") % {"error": text}, sqlstate, text
        )
    return Failure(gettext("The database reported: %(error)s") % {"error": text}, sqlstate, text)


def _statement(query: Query[Any], cursor: Any) -> str:
    statement = query.sql
    if isinstance(statement, sql.Composable):
        statement = statement.as_string(cursor.cursor.connection)
    return _FIRST_WORD.sub(lambda m: f"{m.group(1)} {MARKER}", statement, count=1)


def _limits(timeout_ms: int | None) -> tuple[int, int]:
    statement_timeout = timeout_ms or settings.DIAGNOSTICS_STATEMENT_TIMEOUT_MS
    return statement_timeout, settings.DIAGNOSTICS_LOCK_TIMEOUT_MS


def run(alias: str, query: Query[R], params: Mapping[str, Any] | None = None) -> Result[R]:
    """Run ``query`` on database ``alias``; never raises a database error."""
    statement_timeout, lock_timeout = _limits(query.timeout_ms)
    connection = connections[alias]
    names = {f.name for f in dataclasses.fields(query.row)}  # type: ignore[arg-type]
    try:
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute(
                    SET_LIMITS,
                    {
                        "statement_timeout": str(statement_timeout),
                        "lock_timeout": str(lock_timeout),
                    },
                )
                cursor.execute(_statement(query, cursor), params or {})
                columns = [c.name for c in cursor.description]
                unknown = set(columns) - names
                if unknown:
                    raise TypeError(f"{query.name}: columns {sorted(unknown)} not in row type")
                rows = tuple(query.row(**dict(zip(columns, r, strict=True))) for r in cursor)
            # Roll back: it ends the local settings and keeps the request's transaction
            # exactly as it was.
            transaction.set_rollback(True, using=alias)
    except Error as exc:
        cause = _cause(exc)
        if getattr(cause, "sqlstate", None) is None and not isinstance(
            cause, pg_errors.OperationalError
        ):
            raise  # a bug on our side (a missing parameter...), not a server condition
        failure = explain_error(exc, statement_timeout=statement_timeout, lock_timeout=lock_timeout)
        logger.info("diagnostics query %s on %s failed: %s", query.name, alias, failure.message)
        return Result(error=failure.message, sqlstate=failure.sqlstate, error_detail=failure.detail)
    return Result(rows=rows)
