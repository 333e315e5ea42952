"""Statement page: one pg_stat_statements entry, its history, its plan and index hints.

Reached from the Queries page (``?queryid=``), not a tab of its own. The history comes
from the snapshots ``snapshot_stats`` stores (``analytics.query_stat_snapshots``).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext

from diagnostics import charts, checks, explain, formatting, history, suggestions
from diagnostics.pages.common import Page
from diagnostics.queries import statements
from diagnostics.redaction import redact_sql

FULL_TEXT_CHARS = 100_000
MAX_QUERYID = 2**63 - 1


def parse_queryid(raw: str | None) -> int | None:
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if -MAX_QUERYID - 1 <= value <= MAX_QUERYID else None


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    queryid = parse_queryid(params.get("queryid"))
    status = checks.statements_status(page.alias, info)
    page.panels.update(queryid=queryid, status=status)
    if queryid is None:
        page.panels["errors"] = (
            gettext("That link names no statement (queryid): pick one on Queries."),
        )
        return
    if not status.ok or not info.pgss_schema:
        return
    rows = statements.top_statements(
        page.alias,
        schema=info.pgss_schema,
        version=info.pgss_version_tuple,
        include_portal=True,
        queryid=queryid,
        query_chars=FULL_TEXT_CHARS,
    )
    visible = [r for r in rows if not r.hidden]
    text = visible[0].query if visible else None
    series = history.statement_series(page.alias, info.database, queryid)
    page.panels.update(
        rows=rows,
        text=text,
        masked=redact_sql(text) if text else text,
        calls=sum(r.calls for r in rows),
        total_ms=sum(r.total_ms for r in rows),
        rows_total=sum(r.rows for r in rows),
        plan=explain.generic_plan(page.alias, text, server_major=info.major) if text else None,
        analyze_problem=explain.read_only(text) if text else None,
        suggestions=suggestions.suggest(page.alias, [(queryid, text)]) if text else None,
        counts_chart=charts.line_chart(
            gettext("Calls and rows per snapshot"), series["counts"], formatting.count_label
        ),
        total_chart=charts.line_chart(
            gettext("Total execution time per snapshot"), series["total"], formatting.ms_label
        ),
        mean_chart=charts.line_chart(
            gettext("Mean execution time"), series["mean"], formatting.ms_label
        ),
    )
