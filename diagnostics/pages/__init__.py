"""What each diagnostics page shows: one module per page, each with a ``build`` that
fills the page's panels; this registry lists them in menu order.

Each panel is the result of one query (rows or a message), so a missing privilege or
extension degrades one panel while the rest of the page renders. Views stay thin:
they resolve the database alias and the permissions, then call :func:`build`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from diagnostics import targets
from diagnostics.pages import (
    activity,
    blocking,
    connections,
    indexes,
    maintenance,
    overview,
    privileges,
    queries,
    replication,
    settings,
    space,
)
from diagnostics.pages.common import Page, base

__all__ = ["BUILDERS", "PAGES", "TITLES", "Page", "base", "build", "page_url", "selector"]

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

Builder = Callable[[Page, Mapping[str, str]], None]

# The page slugs are a URL contract: /admin/diagnostics/<slug>/.
REGISTRY: tuple[tuple[str, str | _StrPromise, Builder], ...] = (
    ("overview", _("Overview"), overview.build),
    ("activity", _("Activity"), activity.build),
    ("connections", _("Connections"), connections.build),
    ("blocking", _("Blocking"), blocking.build),
    ("queries", _("Queries"), queries.build),
    ("space", _("Space"), space.build),
    ("indexes", _("Indexes"), indexes.build),
    ("maintenance", _("Maintenance"), maintenance.build),
    ("settings", _("Settings"), settings.build),
    ("privileges", _("Privileges"), privileges.build),
    ("replication", _("Replication"), replication.build),
)
PAGES: tuple[tuple[str, str | _StrPromise], ...] = tuple(
    (slug, title) for slug, title, _ in REGISTRY
)
TITLES = dict(PAGES)
BUILDERS: dict[str, Builder] = {slug: builder for slug, _, builder in REGISTRY}


def page_url(slug: str, alias: str, **params: Any) -> str:
    name = "admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}"
    return f"{reverse(name)}?{urlencode({'db': alias, **params})}"


def build(slug: str, alias: str, params: Mapping[str, str]) -> Page:
    page = base(alias)
    BUILDERS[slug](page, params)
    return page


def selector(alias: str) -> list[tuple[str, str, bool]]:
    return [(a, targets.describe(a), a == alias) for a in targets.aliases()]
