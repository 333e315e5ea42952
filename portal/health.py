"""Health endpoints for Cloud Run's probes.

- ``/healthz`` (liveness): the process answers HTTP. It never touches the database, so a
  database outage does not make Cloud Run restart every instance. On the application
  port it shares the request threads; under gunicorn the liveness probe targets
  ``HEALTH_PORT`` instead, answered by the master process (:mod:`portal.liveness`).
- ``/readyz`` (startup/readiness): the database answers a query on a table that
  ``migrate`` creates, through the application's own connection (persistent, or from
  the pool when it is on: a probe must not fail because every connection slot of the
  server is held by the pools), within ``READYZ_TIMEOUT`` seconds for the query and its
  lock waits, after at most ``connect_timeout`` (or the pool's wait) to get the
  connection. 503 otherwise, with a reason in a few words ("database unreachable",
  "database busy: ...", "not migrated", ...).

Both are answered by :class:`HealthCheckMiddleware` before host validation and the HTTPS
redirect (the probes reach the container directly, over plain HTTP, with a Host header
that is not the service's); the URLs in ``portal/urls.py`` route to the same views.
Neither response names a host, a user or a database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from portal import outage
from portal.limits import LOCK_NOT_AVAILABLE, QUERY_CANCELED, sqlstate

logger = logging.getLogger(__name__)

# Applies to the rest of the check: waiting for a lock counts as well as running. The
# lock wait gets a little less than the statement, so that a check stuck behind a lock
# says so: with equal values statement_timeout fires first ("database too slow").
SET_TIMEOUTS = (
    "SELECT set_config('statement_timeout', %(ms)s, true), "
    "set_config('lock_timeout', %(lock_ms)s, true)"
)
# django_migrations exists once `migrate` has run: the server is up AND this is the
# portal's database AND it has been migrated.
READY_QUERY = "SELECT 1 FROM django_migrations LIMIT 1"


def check_database(alias: str = DEFAULT_DB_ALIAS, timeout: float | None = None) -> None:
    """Raise ``DatabaseError`` unless the database answers within ``timeout`` seconds.

    The connection is the one requests use (opened on demand within ``connect_timeout``,
    or taken from the pool within its ``timeout``); the time that took is taken off
    what the query may use."""
    timeout = settings.READYZ_TIMEOUT if timeout is None else timeout
    started = time.monotonic()
    connection = connections[alias]
    connection.ensure_connection()
    remaining = max(0.05, timeout - (time.monotonic() - started))
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        ms = max(1, round(remaining * 1000))
        cursor.execute(SET_TIMEOUTS, {"ms": str(ms), "lock_ms": str(max(1, ms * 9 // 10))})
        cursor.execute(READY_QUERY)
        cursor.fetchone()


def not_ready_reason(exc: BaseException) -> str:
    """A few words a probe log can show: no host, user or database name."""
    state = sqlstate(exc)
    if state == "42P01":
        return "not migrated"
    if state == QUERY_CANCELED:
        return "database too slow"
    if state == LOCK_NOT_AVAILABLE:
        return "waiting for a lock"
    kind = outage.classify(exc)
    if kind == outage.BUSY:
        return "database busy: no free connection"
    if kind == outage.DOWN:
        return "database unreachable"
    return "database error"


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def readyz(request: HttpRequest) -> HttpResponse:
    try:
        check_database()
    except DatabaseError as exc:
        reason = not_ready_reason(exc)
        # The details go to the log only, once per interval (portal/outage.py).
        outage.log_throttled(
            "readyz", "readiness check failed: %s (%s)", reason, outage.first_line(exc)
        )
        response = _no_store(JsonResponse({"status": "unavailable", "reason": reason}, status=503))
        # Logged above as a warning; without this Django logs every failed probe again as
        # an ERROR ("Service Unavailable"), which Error Reporting would count as a bug.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    return _no_store(JsonResponse({"status": "ready"}))


HEALTH_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
}


class HealthCheckMiddleware:
    """Answer GET/HEAD of the health paths first, before any other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None and request.method in {"GET", "HEAD"}:
            return view(request)
        return self.get_response(request)
