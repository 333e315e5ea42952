"""What a page answers when the database is down, full or too slow: a plain 503.

``handler500`` (``portal/urls.py``) is :func:`server_error`: Django calls it for any
uncaught exception, in a view or in a middleware (the session and user lookups). A
database error of one of these kinds becomes a 503 page of its own instead of a 500:

- **unavailable**: the server cannot be reached, refused the connection or is shutting
  down or starting up (SQLSTATE class 08, 57P01-57P03, or a connection that failed
  before any SQLSTATE);
- **busy**: no connection to be had: PostgreSQL's ``max_connections`` is reached
  (53300) or the pool had no free connection within its timeout;
- **too slow**: a statement hit its ``statement_timeout`` or ``lock_timeout`` (the bounds
  of :mod:`portal.limits`), with the session holding the lock when it was one.

The page needs nothing from the database (no user, no session, no admin template), so
it renders during the outage it reports. Each kind is logged once per
``OUTAGE_LOG_INTERVAL_SECONDS`` with the number of requests it covered, not once per
request (Django's own ERROR with a traceback is suppressed for these). Nothing needs to
recover: the next request opens a new connection (or the pool replaces its own).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext
from django.views import defaults

from portal.limits import describe, is_timeout, sqlstate

logger = logging.getLogger(__name__)

DOWN = "unavailable"
BUSY = "busy"
SLOW = "slow"

_BUSY_TEXT = ("too many clients", "too many connections", "remaining connection slots")
_DOWN_STATES = {"57P01", "57P02", "57P03"}


def classify(exc: BaseException) -> str | None:
    """DOWN, BUSY, SLOW, or None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    cause = exc.__cause__ or exc
    state = sqlstate(exc)
    text = str(cause).lower()
    if type(cause).__name__ == "PoolTimeout" or state == "53300":
        return BUSY
    if any(marker in text for marker in _BUSY_TEXT):
        return BUSY
    if is_timeout(exc):
        return SLOW
    if state is not None and (state.startswith("08") or state in _DOWN_STATES):
        return DOWN
    if state is None and isinstance(exc, DatabaseError):
        # psycopg gives no SQLSTATE when the connection itself failed or was lost.
        from django.db import OperationalError

        if isinstance(exc, OperationalError | InterfaceError):
            return DOWN
    return None


def first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause).strip()
    return text.splitlines()[0][:300] if text else type(cause).__name__


class _Throttle:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def should_log(self, key: str, interval: float) -> tuple[bool, int]:
        now = time.monotonic()
        with self.lock:
            last = self.last.get(key)
            if last is not None and now - last < interval:
                self.suppressed[key] = self.suppressed.get(key, 0) + 1
                return False, 0
            self.last[key] = now
            return True, self.suppressed.pop(key, 0)


_throttle = _Throttle()


def log_throttled(key: str, message: str, *args: Any) -> None:
    """A WARNING at most once per interval for ``key``, counting the ones left out."""
    interval = getattr(settings, "OUTAGE_LOG_INTERVAL_SECONDS", 60)
    log, skipped = _throttle.should_log(key, interval)
    if not log:
        return
    if skipped:
        message += " (%d more since the last report)"
        args = (*args, skipped)
    logger.warning(message, *args)


# --- fail fast while the server is unreachable --------------------------------------

#: After a failed connection attempt, further attempts of this process within this many
#: seconds fail at once with the same error instead of waiting connect_timeout again:
#: one request touches the database several times (session, user, messages), and
#: against a hung server each touch would cost the whole connect_timeout. The first
#: attempt after the interval goes through, so recovery takes at most this long.
FAIL_FAST_SECONDS = 1.0


class _RecentFailures:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failed: dict[str, tuple[float, BaseException]] = {}

    def recent(self, alias: str) -> BaseException | None:
        with self.lock:
            entry = self.failed.get(alias)
        if entry is not None and time.monotonic() - entry[0] < FAIL_FAST_SECONDS:
            return entry[1]
        return None

    def record(self, alias: str, exc: BaseException | None) -> None:
        with self.lock:
            if exc is None:
                self.failed.pop(alias, None)
            else:
                self.failed[alias] = (time.monotonic(), exc)


_recent_failures = _RecentFailures()
# The failure seen by this thread's current request: one request never waits on an
# unreachable server twice, whatever the interval above.
_this_request = threading.local()


def _new_request(**kwargs: Any) -> None:
    _this_request.failure = None


request_started.connect(_new_request, dispatch_uid="portal.outage.new_request")
# And after it: what the thread does between two requests is not this request's.
request_finished.connect(_new_request, dispatch_uid="portal.outage.request_done")


def guarded_connect(alias: str, connect: Any, *, pooled: bool = False) -> Any:
    """``connect()``, unless the same server failed to connect less than a second ago
    (web process only; management commands always try).

    With the pool (``pooled``) the pool bounds the wait itself and keeps reconnecting in
    the background, so only this request's own failure is remembered: another request
    asks the pool again, and gets a connection as soon as the server is back. A pool
    timeout caused by a server that does not answer is reported as such, not as a full
    pool (:func:`portal.db.pool.pool_failure`)."""
    from portal.limits import is_web_process

    if not is_web_process():
        return connect()
    import psycopg

    failure = getattr(_this_request, "failure", None)
    if failure is None and not pooled:
        failure = _recent_failures.recent(alias)
    if failure is not None:
        raise psycopg.OperationalError(f"{first_line(failure)} (not retried within 1 s)")
    started = time.monotonic()
    try:
        connection = connect()
    except psycopg.OperationalError as exc:
        if pooled:
            down = _pool_down(alias, exc, started)
            if down is None:
                raise
            _this_request.failure = down
            if down is exc:
                raise
            raise down from exc
        if classify_driver_error(exc) == DOWN:
            _recent_failures.record(alias, exc)
            _this_request.failure = exc
        raise
    if not pooled:
        _recent_failures.record(alias, None)
    return connection


def _pool_down(alias: str, exc: BaseException, started: float) -> BaseException | None:
    """For a pool timeout while the server was not answering: the error to raise."""
    from psycopg_pool import PoolTimeout

    from portal.db.pool import pool_failure

    if not isinstance(exc, PoolTimeout):
        return exc if classify_driver_error(exc) == DOWN else None
    cause = pool_failure(alias, started)
    if cause is None or classify_driver_error(cause) != DOWN:
        return None
    import psycopg

    return psycopg.OperationalError(f"database not answering: {first_line(cause)}")


def classify_driver_error(exc: BaseException) -> str | None:
    """:func:`classify` for a psycopg error not yet wrapped by Django."""
    from django.db import OperationalError

    wrapped = OperationalError(str(exc))
    wrapped.__cause__ = exc
    return classify(wrapped)


def _titles(kind: str) -> tuple[str, str]:
    if kind == DOWN:
        return gettext("Database unavailable"), gettext(
            "The portal cannot reach its database right now."
        )
    if kind == BUSY:
        return gettext("Database busy"), gettext("Every database connection is in use right now.")
    return gettext("This page took too long"), gettext("The database did not answer in time")


PAGE = """<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><title>{title}</title>
<meta name="robots" content="noindex"></head>
<body><main><h1>{title}</h1><p>{lead}</p><p>{advice}</p></main></body></html>
"""


def unavailable_response(kind: str, detail: str = "") -> HttpResponse:
    title, lead = _titles(kind)
    if detail:
        lead = f"{lead}: {detail}." if kind == SLOW else f"{lead} ({detail})"
    elif kind == SLOW:
        lead = f"{lead}."
    advice = gettext(
        "Nothing was changed. Try again in a few seconds; the page works again by itself "
        "once the database answers."
    )
    response = HttpResponse(
        PAGE.format(
            language=escape(translation.get_language() or settings.LANGUAGE_CODE),
            title=escape(title),
            lead=escape(lead),
            advice=escape(advice),
        ),
        status=503,
        content_type="text/html; charset=utf-8",
    )
    response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    # Logged once per interval below, not by Django once per request.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def response_for(exc: BaseException, request: HttpRequest | None = None) -> HttpResponse | None:
    """The 503 page for a database error of a known kind, logged once per interval."""
    kind = classify(exc)
    if kind is None:
        return None
    path = request.path if request is not None else ""
    log_throttled(f"outage:{kind}", "database %s on %s: %s", kind, path, first_line(exc))
    # The failure may come before LocaleMiddleware ran (the session lookup): the
    # language is read again from the cookie or Accept-Language, which need no database.
    language = (
        translation.get_language_from_request(request)
        if request is not None
        else translation.get_language()
    )
    with translation.override(language):
        detail = ""
        if kind == SLOW:
            detail = describe(
                exc,
                statement_ms=settings.WEB_STATEMENT_TIMEOUT_MS,
                lock_ms=settings.WEB_LOCK_TIMEOUT_MS,
            )
        return unavailable_response(kind, detail)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """``handler500``: a database outage is a 503 page; anything else Django's 500."""
    exc = sys.exc_info()[1]
    if exc is not None:
        response = response_for(exc, request)
        if response is not None:
            return response
    return defaults.server_error(request, template_name)
