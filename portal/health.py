"""Health endpoints for Cloud Run's probes.

- ``/healthz`` (liveness): the process answers HTTP. It never touches the database, so a
  database outage does not make Cloud Run restart every instance.
- ``/readyz`` (startup/readiness): the database answers a query on a table that
  ``migrate`` creates, within ``READYZ_TIMEOUT`` seconds (connect, lock waits and the
  query itself); 503 otherwise. Its own short-lived connection: a probe must neither
  wait for a pool slot behind busy requests nor leave a broken connection to a request.

Both are answered by :class:`HealthCheckMiddleware` before host validation and the HTTPS
redirect (the probes reach the container directly, over plain HTTP, with a Host header
that is not the service's); the URLs in ``portal/urls.py`` route to the same views.
Neither response says anything about the deployment beyond "ok" or "unavailable".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

# Applies to the whole check: waiting for a lock counts as well as running.
SET_TIMEOUTS = (
    "SELECT set_config('statement_timeout', %(ms)s, false), "
    "set_config('lock_timeout', %(ms)s, false)"
)
# django_migrations exists once `migrate` has run: the server is up AND this is the
# portal's database AND it has been migrated.
READY_QUERY = "SELECT 1 FROM django_migrations LIMIT 1"
APPLICATION_NAME = "portal readyz"


def check_database(alias: str = DEFAULT_DB_ALIAS, timeout: float | None = None) -> None:
    """Raise ``psycopg.Error`` (or ``OSError``) unless the database answers within timeout."""
    timeout = settings.READYZ_TIMEOUT if timeout is None else timeout
    params = connections[alias].get_connection_params()
    # libpq takes whole seconds and treats anything below 2 as 2.
    params["connect_timeout"] = max(2, math.ceil(timeout))
    # Its own name, so the probe's sessions are told apart from request connections.
    params["application_name"] = APPLICATION_NAME
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(SET_TIMEOUTS, {"ms": str(max(1, round(timeout * 1000)))})
        conn.execute(READY_QUERY).fetchone()


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def readyz(request: HttpRequest) -> HttpResponse:
    try:
        check_database()
    except (psycopg.Error, OSError) as exc:
        # The reason goes to the log only: the probe's caller needs nothing but 503.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        logger.warning("readiness check failed: %s: %s", type(exc).__name__, first_line)
        response = _no_store(JsonResponse({"status": "unavailable"}, status=503))
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
