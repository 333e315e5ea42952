"""What each diagnostics page shows: one module per page, each with a ``build`` that
fills the page's panels; this registry lists them in menu order.

Each panel is the result of one query (rows or a message), so a missing privilege or
extension degrades one panel while the rest of the page renders. Views stay thin:
they resolve the database alias and the permissions, then call :func:`build`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.urls import reverse
from django.utils.http import urlencode

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

Builder = Callable[[Page, Mapping[str, str]], None]

# The page slugs are a URL contract: /admin/diagnostics/<slug>/.
REGISTRY: tuple[tuple[str, str, Builder], ...] = (
    ("overview", "Overview", overview.build),
    ("activity", "Activity", activity.build),
    ("connections", "Connections", connections.build),
    ("blocking", "Blocking", blocking.build),
    ("queries", "Queries", queries.build),
    ("space", "Space", space.build),
    ("indexes", "Indexes", indexes.build),
    ("maintenance", "Maintenance", maintenance.build),
    ("settings", "Settings", settings.build),
    ("privileges", "Privileges", privileges.build),
    ("replication", "Replication", replication.build),
)
PAGES: tuple[tuple[str, str], ...] = tuple((slug, title) for slug, title, _ in REGISTRY)
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
