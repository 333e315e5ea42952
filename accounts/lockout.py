"""The page a locked-out login sees (django-axes ``AXES_LOCKOUT_CALLABLE``)."""

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
