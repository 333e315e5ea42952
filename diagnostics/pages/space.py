"""Space page: database, schema, table and index sizes, with their history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext

from diagnostics import charts, formatting, history, ownership
from diagnostics.pages.common import Page
from diagnostics.queries import overview, space


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    tables = space.table_sizes(page.alias)
    idx = space.index_sizes(page.alias)
    groups: dict[str, dict[str, Any]] = {}
    for g in [*space.SCHEMA_GROUPS, "others"]:
        groups[g] = {
            "name": g,
            "schemas": [],
            "tables": [],
            "indexes": [],
            "total": 0,
            "estimated": False,
        }
    for row in tables:
        group = groups[row.grp]
        if row.kind == "schema":
            group["schemas"].append(row)
            group["total"] += row.estimated_bytes or 0
            group["estimated"] = group["estimated"] or not row.measured
        elif not row.locked:
            group["tables"].append(row)
    for group in groups.values():
        group["table_rows"] = ownership.tables_with_owner(page.alias, group["tables"])
    for row in idx:
        groups[row.grp]["indexes"].append(row)
    locked = [r for r in tables if r.kind == "table" and r.locked]
    page.panels.update(
        size=overview.database_size(page.alias),
        tables=tables,
        index_sizes=idx,
        groups=[g for g in groups.values() if g["schemas"]],
        estimated=any(g["estimated"] for g in groups.values()),
        locked=locked,
        size_chart=charts.line_chart(
            gettext("Database size over time"),
            history.size_series(page.alias, info.database),
            formatting.bytes_label,
        ),
        tables_chart=charts.line_chart(
            gettext("Largest tables over time"),
            history.top_table_series(page.alias, info.database),
            formatting.bytes_label,
        ),
    )
