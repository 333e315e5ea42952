"""Maintenance page: dead rows, vacuum progress, transaction ID ages and sequences."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostics import checks
from diagnostics.pages.common import Page
from diagnostics.queries import maintenance


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    seqs = maintenance.sequences(page.alias)
    first = seqs.first()
    page.panels.update(
        dead=maintenance.dead_tuples(page.alias),
        progress=maintenance.vacuum_progress(page.alias),
        database_ages=maintenance.database_ages(page.alias),
        table_ages=maintenance.table_ages(page.alias),
        freeze_max_age=info.autovacuum_freeze_max_age,
        xid_limit=maintenance.XID_LIMIT,
        sequences=seqs,
        readable_sequences=[s for s in seqs if s.readable],
        unreadable_sequences=[s for s in seqs if not s.readable],
        unreadable_total=first.unreadable_total if first else 0,
        grant_all_sequences=sorted({s.schema for s in seqs if not s.readable}),
        role_ident=checks.ident(info.role),
    )
