"""Connections page: the server's connections by database, role, application, client
address and SSL, next to max_connections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from django.utils.translation import gettext, gettext_lazy

from diagnostics.pages.common import Page
from diagnostics.queries import connections
from diagnostics.queries.connections import ConnectionGroup

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

HIDDEN = gettext_lazy("hidden (needs pg_read_all_stats)")


def _ssl(group: ConnectionGroup) -> str:
    if group.ssl is None:
        return gettext("unknown")
    return f"SSL {group.ssl_version}" if group.ssl else gettext("no SSL")


DIMENSIONS: tuple[tuple[str, str | _StrPromise, Callable[[ConnectionGroup], str]], ...] = (
    ("database", gettext_lazy("Database"), lambda g: g.database or gettext("(no database)")),
    ("role", gettext_lazy("Role"), lambda g: g.role or str(HIDDEN)),
    (
        "application",
        gettext_lazy("Application"),
        lambda g: g.application_name or ("" if g.state else str(HIDDEN)),
    ),
    ("client", gettext_lazy("Client address"), lambda g: g.client_addr or str(HIDDEN)),
    ("ssl", "SSL", _ssl),
    ("state", gettext_lazy("State"), lambda g: g.state or str(HIDDEN)),
)


def breakdown(
    groups: tuple[ConnectionGroup, ...],
) -> list[tuple[str, str | _StrPromise, list[tuple[str, int]]]]:
    """Per dimension, (value, connections) largest first."""
    out = []
    for key, title, value_of in DIMENSIONS:
        counts: Counter[str] = Counter()
        for g in groups:
            counts[value_of(g) or gettext("(none)")] += g.count
        out.append((key, title, sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
    return out


def build(page: Page, params: Mapping[str, str]) -> None:
    if page.info is None:
        return
    groups = connections.connection_groups(page.alias)
    total = sum(g.count for g in groups)
    page.panels.update(
        groups=groups,
        total=total,
        ratio=total / page.info.max_connections if page.info.max_connections else None,
        breakdown=breakdown(groups.rows) if groups.ok else [],
        without_ssl=sum(
            g.count
            for g in groups
            if g.ssl is False and g.client_addr not in (None, "local socket")
        ),
    )
