"""Reads of the agent tables for the admin: dashboard figures and per-session usage.

Everything here must stay fast on ten million executions: each query reads a time
window or one session through an index, never a whole table.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, JSONObject, Left
from django.utils import timezone

from portal.estimates import RowCount, count_rows

from .models import CodexSession, ExecutionHistory, McpCache, SandboxExecution
from .search import TIME_BUCKETS, time_bucket


def session_usage_annotations() -> dict[str, Subquery]:
    """Per-session execution count, tokens and time, as one correlated subquery.

    Evaluated only for the rows a page shows (PostgreSQL computes select-list
    subqueries after the LIMIT), each through the (session, created_at) index.
    """
    per_session = (
        ExecutionHistory.objects.filter(session_id=OuterRef("pk"))
        .order_by()
        .values("session_id")
        .annotate(
            usage=JSONObject(
                executions=Count("id"),
                tokens=Coalesce(Sum("tokens_used"), Value(0), output_field=IntegerField()),
                time_ms=Coalesce(Sum("execution_time_ms"), Value(0), output_field=IntegerField()),
            )
        )
        .values("usage")
    )
    return {"usage": Subquery(per_session)}


def session_executions(session_id) -> QuerySet[ExecutionHistory]:
    return ExecutionHistory.objects.filter(session_id=session_id).order_by("-created_at", "-id")


def latest_executions(session_id, *, limit: int = 20) -> list[ExecutionHistory]:
    return list(session_executions(session_id).defer("response")[:limit])


# --- Dashboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The dashboard's time windows, in the portal's time zone."""

    now: datetime.datetime
    today: datetime.datetime
    week_ago: datetime.datetime  # the start of the day six days before today
    day_ago: datetime.datetime

    @classmethod
    def starting(cls, now: datetime.datetime | None = None) -> Window:
        now = now or timezone.now()
        today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(
            now=now,
            today=today,
            week_ago=today - datetime.timedelta(days=6),
            day_ago=now - datetime.timedelta(hours=24),
        )


@dataclass(frozen=True)
class StatusCount:
    status: str
    today: int
    week: int


@dataclass(frozen=True)
class ExecutionWindow:
    executions: int
    tokens: int
    time_ms: int


def sessions_by_status(window: Window) -> list[StatusCount]:
    """Sessions created today and in the last seven days, per status (created_at index)."""
    rows = (
        CodexSession.objects.filter(created_at__gte=window.week_ago)
        .order_by()
        .values("status")
        .annotate(today=Count("pk", filter=Q(created_at__gte=window.today)), week=Count("pk"))
        .order_by("-week", "status")
    )
    return [StatusCount(r["status"], r["today"], r["week"]) for r in rows]


def execution_window(window: Window) -> ExecutionWindow:
    """Executions, tokens and time of the last 24 hours (created_at index)."""
    totals = (
        ExecutionHistory.objects.filter(created_at__gte=window.day_ago)
        .order_by()
        .aggregate(
            executions=Count("pk"),
            tokens=Coalesce(Sum("tokens_used"), 0),
            time_ms=Coalesce(Sum("execution_time_ms"), 0),
        )
    )
    return ExecutionWindow(**totals)


def slowest_executions(window: Window, *, limit: int = 8) -> list[ExecutionHistory]:
    """The slowest executions of the last 24 hours.

    Sorting a whole day of executions by time would read every one of them. The time
    bucket index (bucket, created_at) finds the day's executions of the slowest bucket
    directly; lower buckets are read only while fewer than ``limit`` rows were found.
    """
    day = (
        ExecutionHistory.objects.alias(_time_bucket=time_bucket())
        .filter(created_at__gte=window.day_ago)
        .annotate(prompt_head=Left("prompt", 160))
        .defer("prompt", "response")
        .order_by("-execution_time_ms", "-id")
    )
    found: list[ExecutionHistory] = []
    for bucket, _label, _low, _high in reversed(TIME_BUCKETS):
        found += day.filter(_time_bucket=bucket)[: limit - len(found)]
        if len(found) >= limit:
            break
    return found


def failed_sandbox_runs(window: Window, *, limit: int = 5) -> dict:
    """Failed sandbox runs: counts for 24 hours and 7 days, and the latest few.

    Failures are rare, so the partial index on failed runs keeps these cheap.
    """
    failed = SandboxExecution.objects.filter(error__isnull=False)
    latest = list(
        failed.order_by("-executed_at", "-id")
        .annotate(sql_head=Left("sql_query", 120), error_head=Left("error", 160))
        .only("id", "session_id", "executed_at")[:limit]
    )
    return {
        "day": count_rows(failed.filter(executed_at__gte=window.day_ago)),
        "week": count_rows(failed.filter(executed_at__gte=window.week_ago)),
        "latest": latest,
    }


def expired_cache_entries(now: datetime.datetime) -> RowCount:
    """Tool cache entries past their expiry (expires_at index; estimated when many)."""
    return count_rows(McpCache.objects.filter(expires_at__lt=now))
