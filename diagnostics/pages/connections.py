"""Connections page: the server's connections by database, role, application, client
address and SSL, next to max_connections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from diagnostics.pages.common import Page
from diagnostics.queries import connections
from diagnostics.queries.connections import ConnectionGroup

HIDDEN = "hidden (needs pg_read_all_stats)"


def _ssl(group: ConnectionGroup) -> str:
    if group.ssl is None:
        return "unknown"
    return f"SSL {group.ssl_version}" if group.ssl else "no SSL"


DIMENSIONS: tuple[tuple[str, str, Callable[[ConnectionGroup], str]], ...] = (
    ("database", "Database", lambda g: g.database or "(no database)"),
    ("role", "Role", lambda g: g.role or HIDDEN),
    ("application", "Application", lambda g: g.application_name or ("" if g.state else HIDDEN)),
    ("client", "Client address", lambda g: g.client_addr or HIDDEN),
    ("ssl", "SSL", _ssl),
    ("state", "State", lambda g: g.state or HIDDEN),
)


def breakdown(groups: tuple[ConnectionGroup, ...]) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """Per dimension, (value, connections) largest first."""
    out = []
    for key, title, value_of in DIMENSIONS:
        counts: Counter[str] = Counter()
        for g in groups:
            counts[value_of(g) or "(none)"] += g.count
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
