"""JSON log lines for Cloud Logging: severity, message, trace id, access-log httpRequest.

The production smoke test sees the same lines come out of a real gunicorn; these tests
pin down the format: what Cloud Logging needs to group entries under their request.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.http.response import HttpResponseBase
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from portal.jsonlog import (
    CloudLoggingFormatter,
    TraceContext,
    current_trace,
    parse_trace,
    with_trace_context,
)

TRACE_ID = "105445aa7843bc8bf206b12000100000"
CLOUD_TRACE_HEADER = f"{TRACE_ID}/1;o=1"


@pytest.mark.parametrize(
    ("cloud_trace", "traceparent", "expected"),
    [
        (CLOUD_TRACE_HEADER, None, TraceContext(TRACE_ID, "0000000000000001", True)),
        (
            f"{TRACE_ID.upper()}/18446744073709551615;o=0",
            None,
            TraceContext(TRACE_ID, "ffffffffffffffff", False),
        ),
        (TRACE_ID, None, TraceContext(TRACE_ID, None, None)),
        (
            None,
            f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            TraceContext(TRACE_ID, "00f067aa0ba902b7", True),
        ),
        # X-Cloud-Trace-Context wins: it is what Cloud Run's own request log uses.
        (
            CLOUD_TRACE_HEADER,
            f"00-{'a' * 32}-00f067aa0ba902b7-00",
            TraceContext(TRACE_ID, "0000000000000001", True),
        ),
        # Garbage from a client is ignored, never logged.
        ("not-a-trace", None, None),
        ('"}, "severity": "CRITICAL', None, None),
        ("0" * 32 + "/1;o=1", None, None),
        (None, f"00-{'0' * 32}-00f067aa0ba902b7-01", None),
        (None, None, None),
    ],
)
def test_trace_headers_are_parsed_strictly(cloud_trace, traceparent, expected):
    assert parse_trace(cloud_trace, traceparent) == expected


def _record(
    level: int = logging.INFO,
    msg: str = "hello %s",
    args: Any = ("world",),
    exc_info: Any = None,
    **extra: Any,
) -> logging.LogRecord:
    record = logging.LogRecord("portal.example", level, __file__, 42, msg, args, exc_info)
    record.__dict__.update(extra)  # what logging does with extra={...}
    return record


def test_an_app_record_becomes_one_json_line_with_severity():
    line = CloudLoggingFormatter(project="demo-proj").format(_record(logging.WARNING))

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "hello world"
    assert entry["logger"] == "portal.example"
    assert entry["logging.googleapis.com/sourceLocation"]["line"] == "42"
    assert datetime.datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert "logging.googleapis.com/trace" not in entry  # no request, no trace


def test_a_record_inside_a_request_carries_its_trace():
    seen: list[TraceContext | None] = []

    def app(environ, start_response):
        seen.append(current_trace())
        return [CloudLoggingFormatter(project="demo-proj").format(_record()).encode()]

    wrapped = with_trace_context(app)
    body = wrapped({"HTTP_X_CLOUD_TRACE_CONTEXT": CLOUD_TRACE_HEADER}, lambda *a: None)

    entry = json.loads(b"".join(body))
    assert entry["logging.googleapis.com/trace"] == f"projects/demo-proj/traces/{TRACE_ID}"
    assert entry["logging.googleapis.com/spanId"] == "0000000000000001"
    assert entry["logging.googleapis.com/trace_sampled"] is True
    assert seen == [TraceContext(TRACE_ID, "0000000000000001", True)]
    assert current_trace() is None  # nothing leaks to whatever the thread does next


def test_without_a_project_the_bare_trace_id_is_logged():
    wrapped = with_trace_context(
        lambda environ, sr: [CloudLoggingFormatter(project="").format(_record()).encode()]
    )
    entry = json.loads(
        b"".join(
            wrapped(
                {"HTTP_TRACEPARENT": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
                lambda status, headers, *exc: None,  # never called: the app above ignores it
            )
        )
    )

    assert entry["trace"] == TRACE_ID
    assert "logging.googleapis.com/trace" not in entry


def test_an_exception_keeps_its_traceback_in_the_message():
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(logging.ERROR, "it failed", (), exc_info=sys.exc_info())

    entry = json.loads(CloudLoggingFormatter(project="p").format(record))

    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("it failed\nTraceback (most recent call last):")
    assert "ValueError: boom" in entry["message"]


def test_extra_json_fields_are_added_but_cannot_override_the_format():
    record = _record(json_fields={"export_id": 7, "severity": "DEBUG"})
    entry = json.loads(CloudLoggingFormatter(project="p").format(record))

    assert entry["export_id"] == 7
    assert entry["severity"] == "INFO"


@pytest.fixture
def gunicorn_logger() -> Iterator[Logger]:
    cfg = Config()
    cfg.set("errorlog", None)  # no handlers on the test process's loggers
    yield Logger(cfg)


def test_a_gunicorn_access_record_becomes_an_http_request_entry(gunicorn_logger):
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/admin/core/project/?q=x",
        "PATH_INFO": "/admin/core/project/",
        "QUERY_STRING": "q=x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "169.254.1.1",
        "HTTP_USER_AGENT": "Mozilla/5.0",
    }
    request = SimpleNamespace(
        headers=[
            ("X-CLOUD-TRACE-CONTEXT", CLOUD_TRACE_HEADER),
            ("X-FORWARDED-FOR", "6.6.6.6, 203.0.113.9"),
        ]
    )
    response = SimpleNamespace(status="200 OK", sent=5120, headers=[])
    atoms = SafeAtoms(
        gunicorn_logger.atoms(response, request, environ, datetime.timedelta(microseconds=35_000))
    )
    # Exactly how gunicorn's Logger.access() logs it.
    record = logging.LogRecord(
        "gunicorn.access",
        logging.INFO,
        "glogging.py",
        1,
        gunicorn_logger.cfg.access_log_format,
        (atoms,),
        None,
    )

    entry = json.loads(CloudLoggingFormatter(project="demo-proj").format(record))

    assert entry["message"] == "GET /admin/core/project/?q=x 200"
    assert entry["httpRequest"] == {
        "requestMethod": "GET",
        "requestUrl": "/admin/core/project/?q=x",
        "status": 200,
        "latency": "0.035000s",
        "protocol": "HTTP/1.1",
        "responseSize": "5120",
        "userAgent": "Mozilla/5.0",
        # The address Cloud Run's front end appended, not the client-supplied first entry.
        "remoteIp": "203.0.113.9",
    }
    assert entry["logging.googleapis.com/trace"] == f"projects/demo-proj/traces/{TRACE_ID}"
    assert "logging.googleapis.com/sourceLocation" not in entry


# WhiteNoise warns when STATIC_ROOT has not been collected; static files are not under test.
@pytest.mark.filterwarnings("ignore:No directory at")
def test_djangos_own_warnings_for_a_request_carry_its_trace():
    """Through the real WSGI application, as gunicorn calls it."""
    from portal.wsgi import application

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter(project="demo-proj"))
    django_request = logging.getLogger("django.request")
    django_request.addHandler(handler)
    try:
        environ: dict[str, Any] = {
            "PATH_INFO": "/no-such-page",
            "HTTP_X_CLOUD_TRACE_CONTEXT": CLOUD_TRACE_HEADER,
        }
        setup_testing_defaults(environ)
        statuses: list[str] = []
        body = application(environ, lambda status, headers, *exc: statuses.append(status))
        assert isinstance(body, HttpResponseBase)  # Django's response, as WSGI returns it
        b"".join(body)
        body.close()
    finally:
        django_request.removeHandler(handler)

    assert statuses == ["404 Not Found"]
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["severity"], e["message"]) for e in entries] == [
        ("WARNING", "Not Found: /no-such-page")
    ]
    assert entries[0]["logging.googleapis.com/trace"] == f"projects/demo-proj/traces/{TRACE_ID}"


def test_once_per_interval_lets_a_message_through_once_and_counts_the_rest(settings):
    from portal.jsonlog import OncePerInterval

    def record(port: int) -> logging.LogRecord:
        return logging.LogRecord(
            "psycopg.pool", logging.WARNING, __file__, 1, "error connecting: %s", (port,), None
        )

    once = OncePerInterval()
    settings.OUTAGE_LOG_INTERVAL_SECONDS = 3600
    assert once.filter(record(1))
    assert not once.filter(record(2))
    assert not once.filter(record(3))
    settings.OUTAGE_LOG_INTERVAL_SECONDS = 0
    third = record(4)
    assert once.filter(third)
    assert third.getMessage() == "error connecting: 4 (2 more since the last report)"
