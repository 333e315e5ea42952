"""Reads of the agent tables for the admin: dashboard figures and per-session usage.

Everything here must stay fast on ten million executions: each query reads a time
window or one session through an index, never a whole table.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.cache import cache
from django.db import DatabaseError, connections, router, transaction
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, JSONObject, Left, TruncHour
from django.utils import timezone

from portal.admin.estimates import RowCount, count_rows
from portal.db.rows import select

from .models import CodexSession, ExecutionHistory, ExecutionHour, McpCache, SandboxExecution
from .search import TIME_BUCKETS, time_bucket

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


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
                executions=Count("*"),
                tokens=Coalesce(Sum("tokens_used"), Value(0), output_field=IntegerField()),
                time_ms=Coalesce(Sum("execution_time_ms"), Value(0), output_field=IntegerField()),
            )
        )
        .values("usage")
    )
    return {"usage": Subquery(per_session)}


def usage_of(executions: Iterable[ExecutionHistory]) -> dict[str, int]:
    """What :func:`session_usage_annotations` computes, from rows already read: the
    count, and the sums of tokens and time with a missing value counted as zero."""
    rows = list(executions)
    return {
        "executions": len(rows),
        "tokens": sum(e.tokens_used or 0 for e in rows),
        "time_ms": sum(e.execution_time_ms or 0 for e in rows),
    }


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


#: Past days' session counts by status are cached this long: a session's status still
#: changes after its day (running -> completed), so not for long.
PAST_DAYS_CACHE_SECONDS = 300


def _database() -> str:
    # Cache keys name the database: two databases must never share figures.
    return connections[router.db_for_read(CodexSession)].settings_dict["NAME"]


def _statuses(since: datetime.datetime, until: datetime.datetime | None) -> dict[str, int]:
    rows = CodexSession.objects.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return {r["status"]: r["n"] for r in rows.order_by().values("status").annotate(n=Count("*"))}


def _past_days_statuses(window: Window) -> dict[str, int]:
    """Sessions of the six days before today by status (cached for a few minutes)."""
    key = f"portal:sessions-past-days:{_database()}:{window.week_ago.isoformat()}"
    counts = cache.get(key)
    if counts is None:
        counts = _statuses(window.week_ago, window.today)
        cache.set(key, counts, PAST_DAYS_CACHE_SECONDS)
    return counts


def sessions_by_status(window: Window) -> list[StatusCount]:
    """Sessions created today (live) and in the last seven days, per status.

    A week holds over a hundred thousand sessions at scale; the six days before today
    are counted once every few minutes (``PAST_DAYS_CACHE_SECONDS``), today live.
    """
    today = _statuses(window.today, None)
    past = _past_days_statuses(window)
    statuses = set(today) | set(past)
    rows = [StatusCount(s, today.get(s, 0), today.get(s, 0) + past.get(s, 0)) for s in statuses]
    return sorted(rows, key=lambda r: (-r.week, r.status))


#: Hours that ended this long ago no longer change: a row's created_at is the time of
#: its INSERT (the column's default), which commits within moments. An hour's totals
#: are then stored once in core.execution_hours.
SETTLED_AFTER = datetime.timedelta(minutes=5)
HOUR = datetime.timedelta(hours=1)

logger = logging.getLogger(__name__)


def _hour_floor(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def _window_sums() -> dict:
    """The figures of an ExecutionWindow, as aggregates over execution history rows
    (all three read from the created_at index, which includes the summed columns)."""
    return {
        "executions": Count("*"),
        "tokens": Coalesce(Sum("tokens_used"), 0),
        "time_ms": Coalesce(Sum("execution_time_ms"), 0),
    }


def _window_totals(since: datetime.datetime, until: datetime.datetime | None) -> ExecutionWindow:
    rows = ExecutionHistory.objects.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return ExecutionWindow(**rows.order_by().aggregate(**_window_sums()))


def _compute_hours(hours: list[datetime.datetime]) -> dict[datetime.datetime, ExecutionWindow]:
    """Totals of the given whole hours, in one grouped index-only scan."""
    computed = {hour: ExecutionWindow(0, 0, 0) for hour in hours}
    # The sums are annotated from a dict, so django-stubs would know only the "hour" key.
    rows: QuerySet[ExecutionHistory, Mapping[str, Any]] = (
        ExecutionHistory.objects.filter(created_at__gte=hours[0], created_at__lt=hours[-1] + HOUR)
        .annotate(hour=TruncHour("created_at", tzinfo=datetime.UTC))
        .order_by()
        .values("hour")
        .annotate(**_window_sums())
    )
    for row in rows:
        hour = row["hour"].astimezone(datetime.UTC)
        if hour in computed:
            computed[hour] = ExecutionWindow(row["executions"], row["tokens"], row["time_ms"])
    return computed


def _stored_hours(
    first: datetime.datetime, last: datetime.datetime
) -> dict[datetime.datetime, ExecutionWindow]:
    """The rollup's hours from ``first`` to ``last``, both included. Tuples, not model
    instances: a week is 168 rows, read on every dashboard view."""
    rows = ExecutionHour.objects.filter(hour__gte=first, hour__lte=last).values_list(
        "hour", "executions", "tokens", "time_ms"
    )
    return {
        hour.astimezone(datetime.UTC): ExecutionWindow(executions, tokens, time_ms)
        for hour, executions, tokens, time_ms in rows
    }


def _settled_hours(hours: list[datetime.datetime]) -> dict[datetime.datetime, ExecutionWindow]:
    """Totals of whole past hours: stored ones from core.execution_hours, the missing
    ones computed in one query and stored for every later view (and every instance)."""
    found = _stored_hours(hours[0], hours[-1])
    missing = [hour for hour in hours if hour not in found]
    if missing:
        computed = _compute_hours(missing)
        try:
            # Two views computing the same hour store the same figures: first one wins.
            with transaction.atomic(using=router.db_for_write(ExecutionHour)):
                ExecutionHour.objects.bulk_create(
                    [
                        ExecutionHour(
                            hour=hour, executions=t.executions, tokens=t.tokens, time_ms=t.time_ms
                        )
                        for hour, t in computed.items()
                    ],
                    ignore_conflicts=True,
                )
        except DatabaseError:
            # A database that refuses the write (a read-only role, a standby) still gets
            # its figures, computed again next time.
            logger.warning("dashboard: could not store hourly execution totals", exc_info=True)
        found.update(computed)
    return {hour: found[hour] for hour in hours}


def execution_window(window: Window) -> ExecutionWindow:
    """Executions, tokens and time of the last 24 hours, exactly.

    At ten million rows a day holds hundreds of thousands of executions, too many to
    add up on every view. Whole hours that are over are added up once and stored in
    core.execution_hours; only the partial hour at each end is read live, from the
    created_at index (which includes the summed columns).
    """
    start, now = window.day_ago, window.now
    first_hour = _hour_floor(start)
    if first_hour < start:
        first_hour += HOUR
    settled_until = _hour_floor(now - SETTLED_AFTER)
    hours = []
    hour = first_hour
    while hour + HOUR <= settled_until:
        hours.append(hour)
        hour += HOUR
    if not hours:
        return _window_totals(start, None)
    parts = [
        _window_totals(start, hours[0]),
        *_settled_hours(hours).values(),
        _window_totals(hours[-1] + HOUR, None),
    ]
    return ExecutionWindow(
        executions=sum(p.executions for p in parts),
        tokens=sum(p.tokens for p in parts),
        time_ms=sum(p.time_ms for p in parts),
    )


class _PromptHead(TypedDict):
    prompt_head: str


def slowest_executions(
    window: Window, *, limit: int = 8
) -> list[WithAnnotations[ExecutionHistory, _PromptHead]]:
    """The slowest executions of the last 24 hours.

    Sorting a whole day of executions by time would read every one of them. The time
    bucket index (bucket, created_at) INCLUDE (execution_time_ms) finds the day's
    executions of the slowest bucket and sorts them without reading the table; lower
    buckets are read only while fewer than ``limit`` were found. Then the rows shown
    are fetched by id.
    """
    day = (
        ExecutionHistory.objects.alias(_time_bucket=time_bucket())
        .filter(created_at__gte=window.day_ago)
        .order_by("-execution_time_ms", "-id")
    )
    ids: list[int] = []
    for bucket, _label, _low, _high in reversed(TIME_BUCKETS):
        ids += day.filter(_time_bucket=bucket).values_list("id", flat=True)[: limit - len(ids)]
        if len(ids) >= limit:
            break
    if not ids:
        return []
    return list(
        ExecutionHistory.objects.filter(pk__in=ids)
        .annotate(prompt_head=Left("prompt", 160))
        .defer("prompt", "response")
        .order_by("-execution_time_ms", "-id")
    )


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


# --- One session's story ------------------------------------------------------------

#: Statuses that end a session without its result.
FAILED_STATUSES = ("failed", "timeout")


def session_timeline(session_id, *, limit: int = 100) -> list[ExecutionHistory]:
    """The session's first ``limit`` executions, oldest first, without their texts.

    Read through the (session, created_at) index; prompts are cut to a line's worth.
    """
    return list(
        ExecutionHistory.objects.filter(session_id=session_id)
        .order_by("created_at", "id")
        .annotate(prompt_head=Left("prompt", 160))
        .defer("prompt", "response")[:limit]
    )


#: Both neighbours in one round trip: two index probes on (session, created_at), ties on
#: created_at broken by id. Plain SQL: the ORM took longer to build the two OR-filtered
#: queries than PostgreSQL took to answer them, on a page shown for every execution.
NEIGHBOURS_SQL = """
(SELECT id, created_at FROM core.execution_history
 WHERE session_id = %(session)s
   AND (created_at < %(moment)s OR (created_at = %(moment)s AND id < %(id)s))
 ORDER BY created_at DESC, id DESC LIMIT 1)
UNION ALL
(SELECT id, created_at FROM core.execution_history
 WHERE session_id = %(session)s
   AND (created_at > %(moment)s OR (created_at = %(moment)s AND id > %(id)s))
 ORDER BY created_at, id LIMIT 1)
"""


def neighbour_executions(
    execution: ExecutionHistory,
) -> tuple[ExecutionHistory | None, ExecutionHistory | None]:
    """The executions just before and after ``execution`` in its session (by time, id),
    with only their id and time loaded."""
    moment, pk = execution.created_at, execution.pk
    rows = select(
        ExecutionHistory,
        NEIGHBOURS_SQL,
        {"session": execution.session_id, "moment": moment, "id": pk},
    )
    before = next((e for e in rows if (e.created_at, e.pk) < (moment, pk)), None)
    after = next((e for e in rows if (e.created_at, e.pk) > (moment, pk)), None)
    return before, after


#: One branch per failed status, each the newest rows of the (status, created_at) index;
#: plain SQL, as the ORM took longer to build the UNION than PostgreSQL to answer it.
_LATEST_OF_STATUS = (
    "(SELECT session_id, status, model, created_at, metadata FROM core.codex_sessions"
    " WHERE status = %(status{i})s ORDER BY created_at DESC LIMIT %(limit)s)"
)


def latest_failed_sessions(*, limit: int = 8) -> list[CodexSession]:
    """The newest failed or timed-out sessions: ``limit`` rows per status from the
    (status, created_at) index, merged by one UNION ALL (an IN list would sort both
    statuses). Only the columns the dashboard shows."""
    sql = (
        " UNION ALL ".join(_LATEST_OF_STATUS.format(i=i) for i in range(len(FAILED_STATUSES)))
        + " ORDER BY created_at DESC LIMIT %(limit)s"
    )
    params: dict[str, Any] = {f"status{i}": s for i, s in enumerate(FAILED_STATUSES)}
    params["limit"] = limit
    return select(CodexSession, sql, params)


def failed_sessions_by_hour(
    since: datetime.datetime, until: datetime.datetime
) -> dict[datetime.datetime, int]:
    """Failed and timed-out sessions per UTC hour, from the (status, created_at) index.

    Cached for ``PAST_DAYS_CACHE_SECONDS`` like the other past-days session counts (a
    session's status may still change after its hour).
    """
    key = f"portal:failed-by-hour:{_database()}:{since.isoformat()}:{until.isoformat()}"
    counts = cache.get(key)
    if counts is None:
        counts = _failed_by_hour(since, until)
        cache.set(key, counts, PAST_DAYS_CACHE_SECONDS)
    return counts


#: UTC hours as PostgreSQL's date_bin counts them from this origin: the same buckets as
#: date_trunc('hour', ... AT TIME ZONE 'UTC'), a third cheaper for a week of failures.
_HOUR_ORIGIN = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def _failed_by_hour(since: datetime.datetime, until: datetime.datetime) -> dict:
    hour = Func(
        Value(HOUR, output_field=DurationField()),
        "created_at",
        Value(_HOUR_ORIGIN, output_field=DateTimeField()),
        function="date_bin",
        output_field=DateTimeField(),
    )
    rows = (
        CodexSession.objects.filter(
            status__in=FAILED_STATUSES, created_at__gte=since, created_at__lt=until
        )
        .annotate(hour=hour)
        .order_by()
        .values("hour")
        .annotate(n=Count("*"))
    )
    return {row["hour"].astimezone(datetime.UTC): row["n"] for row in rows}


#: A dashboard view computes at most this many missing hours of the chart's week (the
#: newest first: they are the 24-hour card's hours too), so a fresh database's first
#: view costs what it did before the charts; the week fills in over the next views.
CHART_HOURS_PER_VIEW = 24


def hourly_totals_key(window: Window, *, days: int = 7) -> str:
    """What :func:`hourly_totals` reads besides the stored hours: the database and the
    week it covers (it ends at the last settled hour). A cache of anything drawn from
    a complete week keys on this."""
    return f"{_database()}:{_hour_floor(window.now - SETTLED_AFTER).isoformat()}:{days}"


def hourly_totals(
    window: Window, *, days: int = 7, budget: int = CHART_HOURS_PER_VIEW
) -> dict[datetime.datetime, ExecutionWindow | None]:
    """Executions, tokens and time per whole UTC hour of the last ``days`` days.

    Stored hours come from the rollup (core.execution_hours, one small read); up to
    ``budget`` missing ones, newest first, are computed in one grouped scan and stored.
    Hours still missing after that are None.
    """
    settled_until = _hour_floor(window.now - SETTLED_AFTER)
    first = settled_until - days * 24 * HOUR
    hours = [first + i * HOUR for i in range(days * 24)]
    found: dict[datetime.datetime, ExecutionWindow | None] = dict(
        _stored_hours(hours[0], hours[-1])
    )
    missing = [hour for hour in hours if hour not in found][-budget:] if budget > 0 else []
    if missing:
        found.update(_settled_hours(missing))
    return {hour: found.get(hour) for hour in hours}
