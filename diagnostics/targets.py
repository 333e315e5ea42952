"""Which databases the diagnostics pages may inspect, chosen with ``?db=<alias>``."""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.http import Http404, HttpRequest
from django.utils.translation import gettext


def aliases() -> list[str]:
    """Database aliases offered by the selector, in the configured order."""
    configured = getattr(settings, "DIAGNOSTICS_DATABASES", None) or list(connections.settings)
    return [a for a in configured if a in connections.settings]


def default_alias() -> str:
    names = aliases()
    return "default" if "default" in names else names[0]


def resolve(request: HttpRequest) -> str:
    """The alias named by ``?db=``, or the default one; unknown aliases are a 404."""
    alias = request.GET.get("db") or request.POST.get("db") or default_alias()
    if alias not in aliases():
        raise Http404("No such database for diagnostics.")
    return alias


def describe(alias: str) -> str:
    """Alias, host and database name for the selector (never the password)."""
    cfg = connections.settings[alias]
    host = cfg.get("HOST") or gettext("local socket")
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return gettext("%(alias)s — %(name)s on %(host)s as %(user)s") % {
        "alias": alias,
        "name": cfg.get("NAME"),
        "host": f"{host}{port}",
        "user": cfg.get("USER") or gettext("default user"),
    }
