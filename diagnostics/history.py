"""Reads of the statistics history (``analytics`` snapshots) for charts and rates.

History is always selected by alias AND database name: an alias re-pointed at another
database, or two databases on one server, never share a line on a chart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext, pgettext

from diagnostics.charts import Series
from diagnostics.models import StatsSnapshot, TableSizeSnapshot

HISTORY_DAYS = 14
MAX_SNAPSHOTS = 2000


def _snapshots(alias: str, database: str, days: int):
    since = timezone.now() - dt.timedelta(days=days)
    return StatsSnapshot.objects.filter(
        alias=alias, database=database, captured_at__gte=since
    ).order_by("-captured_at")


def connection_series(alias: str, database: str, days: int = HISTORY_DAYS) -> list[Series]:
    rows = list(
        _snapshots(alias, database, days).values_list(
            "captured_at",
            "connections_total",
            "connections_active",
            "connections_idle",
            "connections_idle_in_transaction",
            "max_connections",
        )[:MAX_SNAPSHOTS]
    )
    rows.reverse()
    names = (
        pgettext("connections", "total"),
        pgettext("connections", "active"),
        pgettext("connections", "idle"),
        pgettext("connections", "idle in transaction"),
    )
    return [
        Series(name, tuple((r[0], float(r[i + 1])) for r in rows)) for i, name in enumerate(names)
    ]


def size_series(alias: str, database: str, days: int = HISTORY_DAYS) -> list[Series]:
    rows = list(
        _snapshots(alias, database, days).values_list("captured_at", "database_size_bytes")[
            :MAX_SNAPSHOTS
        ]
    )
    rows.reverse()
    return [
        Series(
            gettext("database %(database)s") % {"database": database},
            tuple((t, float(v)) for t, v in rows),
        )
    ]


def top_table_series(
    alias: str, database: str, days: int = HISTORY_DAYS, top: int = 5
) -> list[Series]:
    latest = _snapshots(alias, database, days).first()
    if latest is None:
        return []
    names = list(
        TableSizeSnapshot.objects.filter(snapshot=latest)
        .order_by("-total_bytes")
        .values_list("schema_name", "table_name")[:top]
    )
    if not names:
        return []
    since = timezone.now() - dt.timedelta(days=days)
    points: dict[tuple[str, str], list[tuple[dt.datetime, float]]] = {n: [] for n in names}
    rows = (
        TableSizeSnapshot.objects.filter(
            snapshot__alias=alias,
            snapshot__database=database,
            snapshot__captured_at__gte=since,
            table_name__in=[n[1] for n in names],
        )
        .order_by("snapshot__captured_at")
        .values_list("schema_name", "table_name", "snapshot__captured_at", "total_bytes")
    )
    for schema, table, captured_at, total in rows:
        if (schema, table) in points:
            points[(schema, table)].append((captured_at, float(total)))
    return [Series(f"{s}.{t}", tuple(points[(s, t)])) for s, t in names]


@dataclass(frozen=True)
class Rate:
    per_second: float
    seconds: float
    since: dt.datetime


def _cache_key(alias: str, database: str, epoch: str) -> str:
    return f"diagnostics:xacts:{alias}:{database}:{epoch}"


def transactions_per_second(
    alias: str,
    database: str,
    *,
    transactions: int,
    sampled_at: dt.datetime,
    epoch: str,
    stats_reset: dt.datetime | None,
) -> Rate | None:
    """Rate between this sample and the previous one (an earlier page view or snapshot).

    ``epoch`` (server start and statistics reset) keys the samples, so counters that
    restarted are never subtracted from each other. Samples under a second apart are
    skipped (backends flush their counters about once a second), and samples over an
    hour old would give a long average rather than the current rate.
    """
    oldest = sampled_at - dt.timedelta(hours=1)
    if stats_reset is not None:
        oldest = max(oldest, stats_reset)
    key = _cache_key(alias, database, epoch)
    previous: tuple[dt.datetime, int] | None = cache.get(key)
    if previous is None:
        snap = (
            StatsSnapshot.objects.filter(
                alias=alias,
                database=database,
                xact_commit__isnull=False,
                captured_at__gte=oldest,
            )
            .order_by("-captured_at")
            .values_list("captured_at", "xact_commit", "xact_rollback")
            .first()
        )
        if snap is not None:
            captured_at, commits, rollbacks = snap
            assert commits is not None  # filtered on xact_commit__isnull=False
            previous = (captured_at, commits + (rollbacks or 0))
    rate = None
    if previous is not None and previous[0] < oldest:
        previous = None
    if previous is not None:
        seconds = (sampled_at - previous[0]).total_seconds()
        delta = transactions - previous[1]
        if seconds >= 1 and delta >= 0:
            rate = Rate(delta / seconds, seconds, previous[0])
    if previous is None or (sampled_at - previous[0]).total_seconds() >= 1:
        cache.set(key, (sampled_at, transactions), timeout=3600)
    return rate


def statement_series(
    alias: str, database: str, queryid: int, days: int = HISTORY_DAYS
) -> dict[str, list[Series]]:
    """Per snapshot, the statement's calls, rows, total and mean execution time (the
    deltas snapshot_stats stored, all roles of that queryid added together)."""
    from django.db.models import Sum

    from diagnostics.models import QueryStatSnapshot

    since = timezone.now() - dt.timedelta(days=days)
    rows = list(
        QueryStatSnapshot.objects.filter(
            snapshot__alias=alias,
            snapshot__database=database,
            snapshot__captured_at__gte=since,
            queryid=queryid,
        )
        .values("snapshot__captured_at")
        .annotate(calls=Sum("calls"), total=Sum("total_exec_time_ms"), rows=Sum("rows"))
        .order_by("-snapshot__captured_at")[:MAX_SNAPSHOTS]
    )
    rows.reverse()
    at = [r["snapshot__captured_at"] for r in rows]
    return {
        "counts": [
            Series(
                gettext("calls"),
                tuple((t, float(r["calls"])) for t, r in zip(at, rows, strict=True)),
            ),
            Series(
                gettext("rows"), tuple((t, float(r["rows"])) for t, r in zip(at, rows, strict=True))
            ),
        ],
        "total": [
            Series(
                gettext("total time"), tuple((t, r["total"]) for t, r in zip(at, rows, strict=True))
            )
        ],
        "mean": [
            Series(
                gettext("mean time"),
                tuple(
                    (t, r["total"] / r["calls"])
                    for t, r in zip(at, rows, strict=True)
                    if r["calls"]
                ),
            )
        ],
    }
