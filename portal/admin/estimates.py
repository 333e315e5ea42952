"""Row counts that stay cheap on tables of tens of millions of rows.

``COUNT(*)`` on a large PostgreSQL table reads every visible row (there is no stored
row count), so a changelist or a dashboard that counts ten million rows spends a second
or more on the count alone. Here counting goes in two steps:

1. Ask the planner: ``EXPLAIN (FORMAT JSON)`` of the filtered query gives its row
   estimate from ``pg_class.reltuples`` (scaled to the table's current size) and the
   column statistics of ``ANALYZE``. Planning costs well under a millisecond.
2. Only when the estimate is small, count for real, and even then with a bounded query
   (``SELECT count(*) FROM (... LIMIT n)``): a wrong estimate can never turn into a
   full scan.

The planner's estimate is only as good as the table's statistics. Right after a bulk
load or a mass delete (before autovacuum's ANALYZE runs) it can be off by a factor of
ten, so step 1 is trusted only when the statistics are fresh (:func:`statistics_stale`,
from ``pg_class.reltuples`` and ``pg_stat_user_tables.n_mod_since_analyze``); when they
are stale the rows are counted for real under a larger bound (``STALE_EXACT_BELOW``),
and beyond it the count says "more than N", never a figure it cannot stand behind.

The SQL is Django's (``QuerySet.explain`` and a sliced ``count``) or parameterised, so
values stay parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connections
from django.db.models import Model, QuerySet
from django.utils.formats import number_format
from django.utils.translation import gettext

#: Below this planner estimate the count is exact (bounded at this many rows + 1).
EXACT_BELOW = 10_000
#: With stale statistics the count is exact up to this many rows (an index-only scan of
#: at most this many entries), "more than" beyond.
STALE_EXACT_BELOW = 100_000
#: Statistics are stale when more rows changed since the last ANALYZE than this share of
#: the rows it saw (plus a floor for small tables). Autovacuum analyzes after 10 % (its
#: default scale factor), so a table it keeps up with never looks stale.
STALE_FRACTION = 0.2
STALE_MIN_ROWS = 1_000

# The statistics functions behind pg_stat_user_tables, called for the one table: the
# view computes every column for every table first (a third of a millisecond here).
STATISTICS_QUERY = """
SELECT c.reltuples::bigint,
       coalesce(pg_stat_get_mod_since_analyze(c.oid), 0),
       pg_stat_get_last_analyze_time(c.oid) IS NOT NULL
           OR pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL
FROM pg_class c
WHERE c.oid = to_regclass(%(table)s)
"""


@dataclass(frozen=True)
class RowCount:
    """A row count and how much to trust it."""

    value: int
    #: "exact", "estimate" (the planner's) or "at_least" (bounded count hit its limit)
    kind: str = "exact"

    @property
    def is_exact(self) -> bool:
        return self.kind == "exact"

    def __str__(self) -> str:
        return humanize(self)


def planner_estimate(queryset: QuerySet) -> int:
    """The planner's estimate of how many rows ``queryset`` returns. Never scans."""
    if queryset.query.is_empty():
        return 0
    query = queryset.query
    if not (query.distinct or query.combinator or query.group_by is not None):
        # The select list does not change how many rows come back, and planning the
        # page's annotations (correlated subqueries) costs more than the estimate.
        queryset = queryset.values("pk")
    text = queryset.order_by().explain(format="json")
    if not text:  # a WHERE that Django knows matches nothing is never sent
        return 0
    plan = json.loads(text)
    return max(int(plan[0]["Plan"]["Plan Rows"]), 0)


def statistics_stale(model: type[Model], using: str) -> bool:
    """Whether the planner's row estimates for ``model``'s table can be trusted.

    Stale: never analyzed (``reltuples`` is -1 until the first VACUUM or ANALYZE), or
    more rows inserted, updated or deleted since the last ANALYZE than
    ``STALE_FRACTION`` of the rows it counted (plus ``STALE_MIN_ROWS``).
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(STATISTICS_QUERY, {"table": connection.ops.quote_name(model._meta.db_table)})
        row = cursor.fetchone()
    if row is None:
        return True
    reltuples, modified, analyzed = row
    if reltuples < 0 or not analyzed:
        return True
    return modified > STALE_FRACTION * reltuples + STALE_MIN_ROWS


def count_rows(queryset: QuerySet, *, exact_below: int = EXACT_BELOW) -> RowCount:
    """Exact when cheap, the planner's estimate otherwise; never an unbounded ``COUNT(*)``."""
    estimate = planner_estimate(queryset)
    if estimate >= exact_below:
        if not statistics_stale(queryset.model, queryset.db):
            return RowCount(estimate, "estimate")
        # The estimate rests on statistics from before a bulk change: count instead.
        bounded = queryset.order_by()[: STALE_EXACT_BELOW + 1].count()
        if bounded <= STALE_EXACT_BELOW:
            return RowCount(bounded, "exact")
        return RowCount(bounded, "at_least")
    bounded = queryset.order_by()[: exact_below + 1].count()
    if bounded <= exact_below:
        return RowCount(bounded, "exact")
    return RowCount(max(bounded, estimate), "at_least")


def _significant(value: int, digits: int = 2) -> int:
    if value < 10**digits:
        return value
    scale = 10 ** (len(str(value)) - digits)
    return round(value / scale) * scale


def humanize(count: RowCount) -> str:
    """``1,234`` when exact, ``about 10.2 million`` / ``more than 10,000`` otherwise."""
    if count.kind == "exact":
        return number_format(count.value, force_grouping=True)
    if count.kind == "at_least":
        return gettext("more than %(count)s") % {
            "count": number_format(count.value - 1, force_grouping=True)
        }
    value = count.value
    if value >= 10**9:
        return gettext("about %(count)s billion") % {
            "count": number_format(round(value / 10**9, 1), 1)
        }
    if value >= 10**6:
        return gettext("about %(count)s million") % {
            "count": number_format(round(value / 10**6, 1), 1)
        }
    return gettext("about %(count)s") % {
        "count": number_format(_significant(value), force_grouping=True)
    }
