"""Indexes page: unused, duplicate, invalid and bloated indexes and NOT VALID
constraints, each marked as declared by a migration (the fix is a migration) or made by
hand (the fix is a statement), and the schema drift from the migrations."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostics import drift, ownership
from diagnostics.pages.common import Page
from diagnostics.queries import indexes, overview


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    alias = page.alias
    stats = overview.database_stats(alias).first()
    bloat = indexes.index_bloat(alias)
    unused = indexes.unused_indexes(alias, server_major=info.major)
    duplicates = indexes.duplicate_indexes(alias)
    invalid = indexes.invalid_indexes(alias)
    constraints = indexes.unvalidated_constraints(alias)
    page.panels.update(
        stats_since=stats.stats_reset if stats else None,
        stats_known=stats is not None,
        unused=unused,
        unused_rows=ownership.with_owner(alias, unused),
        duplicates=duplicates,
        duplicate_rows=[
            (d, owner, ownership.declared_index(alias, d.schema, d.covered_by))
            for d, owner in ownership.with_owner(alias, duplicates)
        ],
        invalid=invalid,
        invalid_rows=ownership.with_owner(alias, invalid),
        constraints=constraints,
        constraint_rows=ownership.constraints_with_owner(alias, constraints),
        drift=drift.panel(alias),
        bloat=bloat,
        bloat_without_stats=sum(1 for b in bloat if not b.has_stats),
        has_last_idx_scan=info.major >= 16,
        project_database=ownership.applies(alias),
    )
