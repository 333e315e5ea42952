"""JSON log lines for Cloud Logging, with the request's trace id.

Cloud Run sends each line a container writes to Cloud Logging; a line that is a JSON
object becomes a structured entry, and these keys are special
(https://cloud.google.com/logging/docs/structured-logging):

- ``severity``: the entry's level (DEBUG ... CRITICAL); without it everything is DEFAULT.
- ``message``: the text shown in the log viewer (a traceback here is picked up by Error
  Reporting).
- ``logging.googleapis.com/trace`` = ``projects/PROJECT/traces/TRACE_ID`` (and
  ``.../spanId``, ``.../trace_sampled``): entries with the same trace are grouped under
  their request in the Logs Explorer.
- ``httpRequest``: method, URL, status, latency ... of an access-log entry.

The trace comes from the ``X-Cloud-Trace-Context`` header that Cloud Run adds to every
request (``TRACE_ID/SPAN_ID;o=1``), or from W3C ``traceparent``. Django's own log calls
get it from a context variable set around each request by :func:`with_trace_context`
(wrapped around the WSGI application); gunicorn's access-log records carry the request
headers themselves.

Hand-written rather than google-cloud-logging's StructuredLogHandler: that library pulls
in a larger dependency tree, finds the request through its own middleware and knows
nothing of gunicorn's access records; the format itself is a dozen keys.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str | None = None  # 16 hex digits, as Cloud Logging wants it
    sampled: bool | None = None


def parse_trace(cloud_trace: str | None, traceparent: str | None = None) -> TraceContext | None:
    """The trace of a request from its headers; None when absent or malformed.

    Malformed values are ignored rather than logged: they come from the client.
    """
    match = _CLOUD_TRACE.match((cloud_trace or "").strip())
    if match and int(match.group(1), 16):
        span = None
        if match.group(2) and 0 < int(match.group(2)) < 2**64:
            # X-Cloud-Trace-Context has a decimal span id; Cloud Logging wants hex.
            span = f"{int(match.group(2)):016x}"
        sampled = None if match.group(3) is None else match.group(3) == "1"
        return TraceContext(match.group(1).lower(), span, sampled)
    match = _TRACEPARENT.match((traceparent or "").strip())
    if match and int(match.group(1), 16) and int(match.group(2), 16):
        return TraceContext(match.group(1), match.group(2), bool(int(match.group(3), 16) & 1))
    return None


_current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "portal_trace", default=None
)


def current_trace() -> TraceContext | None:
    """The trace of the request being handled by this thread, if any."""
    return _current_trace.get()


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_trace_context(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so every log record emitted while it runs carries the trace.

    Wrapping the whole application (not a middleware) also covers what Django logs
    after the middleware chain, such as its "Not Found: /x" warnings.
    """

    def application(environ: dict[str, Any], start_response: Callable[..., Any]):
        token = _current_trace.set(
            parse_trace(environ.get("HTTP_X_CLOUD_TRACE_CONTEXT"), environ.get("HTTP_TRACEPARENT"))
        )
        try:
            return app(environ, start_response)
        finally:
            _current_trace.reset(token)

    return application


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in Cloud Logging's structured-logging format.

    ``project`` (default: ``GOOGLE_CLOUD_PROJECT``) makes the trace a full resource name;
    without it the bare id is logged under ``trace``, which Cloud Logging does not group.
    Extra keys can be attached with ``logger.info(..., extra={"json_fields": {...}})``.
    """

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = (
            project if project is not None else os.environ.get("GOOGLE_CLOUD_PROJECT", "")
        )

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": SEVERITY.get(record.levelno, "DEFAULT"),
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            message, http_request, trace = _access_entry(record.args)
            entry["httpRequest"] = http_request
        else:
            message = record.getMessage()
            trace = current_trace()
            if not record.name.startswith("gunicorn."):
                # gunicorn's own records would all point into its logging module.
                entry["logging.googleapis.com/sourceLocation"] = {
                    "file": record.pathname,
                    "line": str(record.lineno),
                    "function": record.funcName,
                }
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry["message"] = message
        if trace is not None:
            if self.project:
                entry["logging.googleapis.com/trace"] = (
                    f"projects/{self.project}/traces/{trace.trace_id}"
                )
            else:
                entry["trace"] = trace.trace_id
            if trace.span_id:
                entry["logging.googleapis.com/spanId"] = trace.span_id
            if trace.sampled is not None:
                entry["logging.googleapis.com/trace_sampled"] = trace.sampled
        extra = getattr(record, "json_fields", None)
        if isinstance(extra, Mapping):
            entry.update({k: v for k, v in extra.items() if k not in entry})
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_entry(atoms: Mapping[str, Any]) -> tuple[str, dict[str, Any], TraceContext | None]:
    """(message, httpRequest, trace) of a gunicorn access record from its atoms."""

    def atom(key: str) -> str:
        value = atoms.get(key)
        return "" if value in (None, "-") else str(value)

    url = atom("U") + (f"?{atom('q')}" if atom("q") else "")
    status = atom("s")
    http_request: dict[str, Any] = {
        "requestMethod": atom("m"),
        "requestUrl": url,
        "status": int(status) if status.isdigit() else status,
        "latency": f"{atom('L') or '0'}s",
        "protocol": atom("H"),
    }
    if atom("B"):
        http_request["responseSize"] = atom("B")
    if atom("a"):
        http_request["userAgent"] = atom("a")
    if atom("f"):
        http_request["referer"] = atom("f")
    # Behind Cloud Run REMOTE_ADDR is the proxy; the front end appends the address it saw
    # to X-Forwarded-For, so the last entry is the one no client can forge.
    forwarded = atom("{x-forwarded-for}i")
    remote = forwarded.rsplit(",", 1)[-1].strip() if forwarded else atom("h")
    if remote:
        http_request["remoteIp"] = remote
    trace = parse_trace(atom("{x-cloud-trace-context}i"), atom("{traceparent}i"))
    return f"{atom('m')} {url} {status}", http_request, trace


def gunicorn_logconfig(level: str = "INFO", project: str | None = None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log to stderr, access log to stdout, JSON."""
    level = level.upper()
    formatter = {"()": "portal.jsonlog.CloudLoggingFormatter", "project": project}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


class AsWarningWithoutTraceback(logging.Filter):
    """Logs a record at WARNING without its traceback (for expected client errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class OncePerInterval(logging.Filter):
    """Lets each message (by its format string) through once per
    ``OUTAGE_LOG_INTERVAL_SECONDS``, then notes how many were left out.

    For psycopg's pool, which warns at every failed connection attempt: during an
    outage that is several lines a second per process, where one line per interval
    says the same (portal/outage.py logs the requests it answered with a 503)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        from django.conf import settings

        interval = getattr(settings, "OUTAGE_LOG_INTERVAL_SECONDS", 60)
        key = f"{record.name}:{record.msg}"
        now = time.monotonic()
        last = self.last.get(key)
        if last is not None and now - last < interval:
            self.skipped[key] = self.skipped.get(key, 0) + 1
            return False
        self.last[key] = now
        skipped = self.skipped.pop(key, 0)
        if skipped and isinstance(record.args, tuple):
            record.msg = f"{record.msg} (%d more since the last report)"
            record.args = (*record.args, skipped)
        return True
