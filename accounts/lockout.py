"""Login throttling: the lockout page (django-axes ``AXES_LOCKOUT_CALLABLE``), the wider
per-IP / per-account / global limits, and one lockout event per lockout."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Too many failed logins"),
        "cool_off_minutes": max(1, round(cool_off.total_seconds() / 60)) if cool_off else None,
    }
    response = TemplateResponse(request, "accounts/lockout.html", context, status=429)
    return response.render()


def attempted_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The email a login attempt is for, normalised so case and spaces do not split counts."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = getattr(request, "POST", {}).get("username")
    return str(value).strip().lower() if value is not None else None


# --- Limits beyond the (email, IP) pair ----------------------------------------------
#
# django-axes locks an (email, IP) pair after LOGIN_FAILURE_LIMIT failures. Three wider
# limits stop what a pair lock does not: one address trying many emails (per IP), many
# addresses trying one email (per account) and a spread-out attack (a global ceiling
# per minute). They are counted from audit.security_events, the login history every
# instance shares: one index range scan (event_type, created_at) bounded by the limit,
# no extra table and no per-instance cache that Cloud Run's instances would not share.


def _failures(since, limit: int, **match) -> int:
    from audit.models import SecurityEvent

    rows = SecurityEvent.objects.filter(
        event_type=SecurityEvent.EventType.LOGIN_FAILURE, created_at__gte=since, **match
    )
    return len(rows.values_list("pk", flat=True)[:limit])


def ceiling_reached(request: HttpRequest, username: str | None) -> str | None:
    """Which wider limit this login attempt is over ("ip", "account", "global"), if any."""
    import datetime

    from django.conf import settings
    from django.utils import timezone

    from portal.request_context import client_ip

    now = timezone.now()
    window = now - settings.AXES_COOLOFF_TIME
    ip = client_ip(request)
    if ip and _failures(window, settings.LOGIN_IP_FAILURE_LIMIT, ip_address=ip) >= (
        settings.LOGIN_IP_FAILURE_LIMIT
    ):
        return "ip"
    if username and _failures(
        window, settings.LOGIN_ACCOUNT_FAILURE_LIMIT, email_attempted=username
    ) >= (settings.LOGIN_ACCOUNT_FAILURE_LIMIT):
        return "account"
    minute = now - datetime.timedelta(minutes=1)
    if _failures(minute, settings.LOGIN_GLOBAL_FAILURES_PER_MINUTE) >= (
        settings.LOGIN_GLOBAL_FAILURES_PER_MINUTE
    ):
        return "global"
    return None


class LoginCeilingBackend:
    """First authentication backend: refuses an attempt over a wider limit.

    Raising PermissionDenied stops Django's authenticate() (no password is checked)
    and counts as a failed login; ``axes_locked_out`` makes the axes middleware answer
    with the lockout page (429). One lockout event is written when a limit is first
    reached, not one per refused request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        email = attempted_username(request, {"username": username})
        scope = ceiling_reached(request, email)
        if scope is None:
            return None
        request.axes_locked_out = True
        _record_ceiling_lockout(request, scope, email)
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied(f"login limit reached ({scope})")

    # No get_user(): this backend never logs anyone in, so sessions never name it.


def _record_ceiling_lockout(request: HttpRequest, scope: str, email: str | None) -> None:
    from django.conf import settings
    from django.utils import timezone

    from audit.models import SecurityEvent
    from audit.services import record_security_event
    from portal.request_context import client_ip

    key = {"ip": client_ip(request), "account": email, "global": "*"}[scope]
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    if SecurityEvent.objects.filter(
        event_type=SecurityEvent.EventType.LOCKOUT,
        created_at__gte=since,
        details__scope=scope,
        details__key=key,
    ).exists():
        return
    record_security_event(
        event_type=SecurityEvent.EventType.LOCKOUT,
        email_attempted=email or "",
        request=request,
        details={"scope": scope, "key": key},
    )


def is_new_lockout(request: HttpRequest) -> bool:
    """Whether django-axes' lockout signal marks a lock just reached (one event each).

    Axes sends the signal again for every attempt during a lockout; only the attempt
    whose failure count reaches the limit starts a lockout. (During a lockout axes
    either records no failure -- ``axes_failures_since_start`` stays None -- or counts
    on past the limit.)
    """
    from axes.helpers import get_failure_limit

    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return False
    return failures == get_failure_limit(request, getattr(request, "axes_credentials", {}))
