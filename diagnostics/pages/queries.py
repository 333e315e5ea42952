"""Queries page: the top statements of pg_stat_statements and since when they count."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from django.utils.translation import gettext

from audit.models import ActivityLog
from diagnostics import charts, checks, formatting, suggestions
from diagnostics.pages.common import Page
from diagnostics.queries import statements
from diagnostics.redaction import redact_sql

SEARCH_CHARS = 200


@dataclasses.dataclass(frozen=True)
class QueryFilters:
    search: str | None
    errors: tuple[str, ...]


def query_filters(params: Mapping[str, str]) -> QueryFilters:
    search = (params.get("q") or "").strip()
    if "\x00" in search:
        # PostgreSQL text cannot hold NUL: say so instead of failing on the parameter.
        return QueryFilters(None, (gettext("Search: the text contains a NUL character; ignored."),))
    if len(search) > SEARCH_CHARS:
        return QueryFilters(
            search[:SEARCH_CHARS],
            (
                gettext("Search: only the first %(chars)s characters are used.")
                % {"chars": SEARCH_CHARS},
            ),
        )
    return QueryFilters(search or None, ())


SUGGEST_FOR = 20  # the top statements by total time that get index suggestions


def last_portal_reset(alias: str, database: str) -> dt.datetime | None:
    entry = (
        ActivityLog.objects.filter(
            action="diagnostics.reset_query_stats",
            resource_type="pg_stat_statements",
            resource_id=database,
            details__alias=alias,
            details__result="reset",
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return entry


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    status = checks.statements_status(page.alias, info)
    order = params.get("order", "total")
    if order not in statements.ORDERS:
        order = "total"
    include_portal = params.get("include_portal") in {"1", "on", "true"}
    filters = query_filters(params)
    search = filters.search
    page.panels.update(
        filters=filters,
        search=search or "",
        status=status,
        order=order,
        include_portal=include_portal,
        orders=[
            ("total", gettext("total time")),
            ("mean", gettext("mean time")),
            ("calls", gettext("calls")),
            ("rows", gettext("rows")),
            ("io", gettext("I/O")),
        ],
    )
    if not status.ok or not info.pgss_schema:
        return
    top = statements.top_statements(
        page.alias,
        schema=info.pgss_schema,
        version=info.pgss_version_tuple,
        order=order,
        include_portal=include_portal,
        search=search,
    )
    if search:
        # The server matched the raw text; a match that only a redacted literal made
        # (searching "PASSWORD 'a", then "'ab", ...) would reveal the secret one letter
        # at a time, so only rows whose shown text contains the search stay.
        needle = search.casefold()
        top = dataclasses.replace(
            top,
            rows=tuple(
                r for r in top.rows if r.hidden or needle in (redact_sql(r.query) or "").casefold()
            ),
        )
    since = None
    dealloc = None
    if info.pgss_version_tuple >= (1, 9):
        stats_info = statements.statements_info(page.alias, schema=info.pgss_schema).first()
        if stats_info is not None:
            since = stats_info.stats_reset
            dealloc = stats_info.dealloc
    portal_reset = last_portal_reset(page.alias, info.database)
    if portal_reset is not None and (since is None or portal_reset > since):
        since = portal_reset
    row_since = [r.stats_since for r in top if r.stats_since is not None]
    first = top.first()
    chart_items = [
        (
            redact_sql(r.query)
            if not r.hidden
            else gettext("(hidden) queryid %(queryid)s") % {"queryid": r.queryid},
            r.total_ms,
        )
        for r in sorted(top.rows, key=lambda r: r.total_ms, reverse=True)[:10]
    ]
    page.panels.update(
        top=top,
        since=since,
        oldest_row_since=min(row_since) if row_since else None,
        dealloc=dealloc,
        entries_total=first.entries_total if first else 0,
        hidden_total=first.hidden_total if first else 0,
        io_timing=info.track_io_timing == "on",
        chart=charts.bar_chart(
            gettext("Top queries by total time"), chart_items, formatting.ms_label
        ),
        suggestions=suggestions.suggest(
            page.alias,
            [
                (r.queryid, r.query)
                for r in sorted(top.rows, key=lambda r: r.total_ms, reverse=True)[:SUGGEST_FOR]
                if not r.hidden
            ],
        ),
    )
