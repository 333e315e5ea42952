"""Replication page: standbys, replication slots and whether this server is a standby."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostics.pages.common import Page
from diagnostics.queries import replication


def build(page: Page, params: Mapping[str, str]) -> None:
    if page.info is None:
        return
    standbys = replication.standbys(page.alias)
    slots = replication.slots(page.alias)
    recovery = replication.recovery(page.alias)
    rec = recovery.first()
    page.panels.update(
        standbys=standbys,
        slots=slots,
        recovery=recovery,
        is_standby=bool(rec and rec.in_recovery),
        nothing=standbys.ok
        and slots.ok
        and not standbys.rows
        and not slots.rows
        and not (rec and rec.in_recovery),
    )
