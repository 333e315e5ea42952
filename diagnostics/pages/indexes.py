"""Indexes page: unused, duplicate, invalid and bloated indexes."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostics.pages.common import Page
from diagnostics.queries import indexes, overview


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    stats = overview.database_stats(page.alias).first()
    bloat = indexes.index_bloat(page.alias)
    page.panels.update(
        stats_since=stats.stats_reset if stats else None,
        stats_known=stats is not None,
        unused=indexes.unused_indexes(page.alias, server_major=info.major),
        duplicates=indexes.duplicate_indexes(page.alias),
        invalid=indexes.invalid_indexes(page.alias),
        bloat=bloat,
        bloat_without_stats=sum(1 for b in bloat if not b.has_stats),
        has_last_idx_scan=info.major >= 16,
    )
