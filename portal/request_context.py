"""Who and where a request comes from: client IP, request id, and the current request.

Client IP behind proxies: every proxy *appends* the address it received the
connection from to ``X-Forwarded-For``, so only the rightmost entries were written
by proxies we trust; everything to their left is whatever the client sent and can be
forged. With ``TRUSTED_PROXY_COUNT = n`` the client is the n-th entry from the right
(Cloud Run's front end is one proxy: n = 1). With n = 0 the header is ignored and
``REMOTE_ADDR`` is the client.

Request id: generated here for every request (32 random hex digits), never taken
from a header -- a client could otherwise choose the id its audit rows carry, or
reuse another request's. The trace Cloud Run sends in ``X-Cloud-Trace-Context``
(``TRACE_ID/SPAN_ID;o=1``) or W3C ``traceparent`` (``00-TRACE_ID-SPAN_ID-FLAGS``) is
kept separately as the *client trace id* (audit rows store it in ``client_trace_id``,
the JSON logs group lines by it); it is what the client or the front end said, useful
for finding the request's logs, not an identity.

The middleware also binds the request to a context variable, so code that runs
without a request argument (signal receivers for group and permission changes) can
still record who did it and from where.
"""

import ipaddress
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from portal.jsonlog import parse_trace

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def _valid_ip(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[v6]:port"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "v4:port"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's IP address, trusting only ``TRUSTED_PROXY_COUNT`` proxies."""
    if request is None:
        return None
    trusted = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if trusted > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted:
            # The entry our outermost trusted proxy appended: what it saw connect to it.
            found = _valid_ip(hops[-trusted])
            if found:
                return found
        # Fewer hops than trusted proxies (or garbage): the request did not come
        # through the expected chain, so nothing in the header can be trusted.
    return _valid_ip(request.META.get("REMOTE_ADDR", "") or "")


def trace_id(request: HttpRequest) -> str | None:
    """The trace id Cloud Run / a W3C tracer put on the request, if well-formed.

    Parsed by the same function as the JSON logs' trace, so an audit row's request id
    and the request's log lines always agree.
    """
    trace = parse_trace(
        request.META.get("HTTP_X_CLOUD_TRACE_CONTEXT"), request.META.get("HTTP_TRACEPARENT")
    )
    return trace.trace_id if trace else None


def request_id(request: HttpRequest | None) -> str:
    """The request's id: set by the middleware, else generated now (and remembered)."""
    if request is None:
        return ""
    existing = getattr(request, "request_id", None)
    if existing:
        return existing
    value = uuid.uuid4().hex
    # An attribute of our own on the request (HttpRequest declares none such).
    setattr(request, "request_id", value)  # noqa: B010
    return value


def client_trace_id(request: HttpRequest | None) -> str:
    """The trace id the request arrived with (Cloud Run or the client), or ""."""
    if request is None:
        return ""
    return trace_id(request) or ""


def user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return request.META.get("HTTP_USER_AGENT", "")[:1000]


def current_request() -> HttpRequest | None:
    """The request being handled by this thread/task, if any."""
    return _current_request.get()


@contextmanager
def bind_request(request: HttpRequest | None) -> Iterator[None]:
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


class RequestContextMiddleware:
    """Sets ``request.request_id`` and ``request.client_ip`` and binds the request.

    The response carries ``X-Request-ID`` so a user can quote it to support.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id(request)
        setattr(request, "client_ip", client_ip(request))  # noqa: B010
        with bind_request(request):
            response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", getattr(request, "request_id"))  # noqa: B009
        return response
