"""Maintenance page: every table's vacuum state (paginated, sortable), vacuum progress,
transaction ID ages and sequences."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext, gettext_lazy

from diagnostics import checks, ownership
from diagnostics.pages.common import Page
from diagnostics.queries import maintenance
from diagnostics.runner import Result

PER_PAGE = 25
MAX_PAGE = 10_000
ORDER_LABELS = (
    ("dead", gettext_lazy("dead rows")),
    ("dead_ratio", gettext_lazy("dead share")),
    ("due", gettext_lazy("closest to autovacuum")),
    ("live", gettext_lazy("live rows")),
    ("changed", gettext_lazy("changed since analyze")),
    ("vacuumed", gettext_lazy("longest since vacuum")),
    ("analyzed", gettext_lazy("longest since analyze")),
    ("name", gettext_lazy("name")),
)


def page_number(raw: str | None) -> tuple[int, str | None]:
    """The 1-based page asked for, and a message when the value was not one."""
    if not raw:
        return 1, None
    try:
        number = int(raw)
        if not 1 <= number <= MAX_PAGE:
            raise ValueError
    except ValueError:
        return 1, gettext("Page: enter a whole number from 1 to %(max)s; showing page 1.") % {
            "max": MAX_PAGE
        }
    return number, None


def sequence_rows(
    seqs: Result[maintenance.SequenceUsage],
) -> list[tuple[maintenance.SequenceUsage, str]]:
    """Readable sequences with a row anchor: ``seq-<schema>-<name>`` on the sequence's
    first (most used) row, the column appended on the rows of its other columns."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for s in seqs:
        if not s.readable:
            continue
        anchor = f"seq-{s.schema}-{s.name}"
        if (s.schema, s.name) in seen:
            anchor += f"-{s.column}"
        seen.add((s.schema, s.name))
        rows.append((s, anchor))
    return rows


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    asked = params.get("order") or ""
    order = asked if asked in maintenance.TABLE_ORDERS else "dead"
    number, error = page_number(params.get("page"))
    search = (params.get("q") or "").strip()[:200] or None
    errors = [error] if error else []
    if search is not None and "\x00" in search:
        # PostgreSQL text cannot hold NUL: say so instead of failing on the parameter.
        errors.append(gettext("Search: the text contains a NUL character; ignored."))
        search = None
    listed = maintenance.tables(
        page.alias,
        server_major=info.major,
        order=order,
        search=search,
        offset=(number - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    first_table = listed.first()
    total = first_table.total if first_table else 0
    seqs = maintenance.sequences(page.alias)
    first = seqs.first()
    page.panels.update(
        dead=listed,
        dead_rows=ownership.tables_with_owner(page.alias, listed, name="table_name"),
        tables_total=total,
        tables_page=number,
        tables_pages=max(1, -(-total // PER_PAGE)),
        tables_order=order,
        tables_orders=ORDER_LABELS,
        tables_search=search or "",
        errors=tuple(errors),
        progress=maintenance.vacuum_progress(page.alias),
        database_ages=maintenance.database_ages(page.alias),
        table_ages=maintenance.table_ages(page.alias),
        freeze_max_age=info.autovacuum_freeze_max_age,
        xid_limit=maintenance.XID_LIMIT,
        sequences=seqs,
        readable_sequences=sequence_rows(seqs),
        unreadable_sequences=[s for s in seqs if not s.readable],
        unreadable_total=first.unreadable_total if first else 0,
        grant_all_sequences=sorted({s.schema for s in seqs if not s.readable}),
        role_ident=checks.ident(info.role),
    )
