"""Each user's own time zone: the choices, the default and the middleware activating it."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


@cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone the system knows (America/Sao_Paulo among them), by name."""
    return [(name, name.replace("_", " ")) for name in _zone_names()]


def default_time_zone() -> str:
    return settings.TIME_ZONE


def is_valid(name: str) -> bool:
    return name in _zone_names()


class UserTimezoneMiddleware:
    """Activates the signed-in user's zone; anyone else sees settings.TIME_ZONE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        name = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        if name and is_valid(name):
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
