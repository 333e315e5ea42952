"""Reads of the agent tables for the admin: dashboard figures and per-session usage.

Everything here must stay fast on ten million executions: each query reads a time
window or one session through an index, never a whole table.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import DatabaseError, connections, router, transaction
from django.db.models import (
    BigIntegerField,
    Count,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, JSONObject, Left, TruncHour
from django.utils import timezone

from portal.admin.estimates import RowCount, count_rows
from portal.db.rows import select
from portal.limits import is_refusal, is_timeout

from .models import (
    FAILED_STATUSES,
    CodexSession,
    ExecutionHistory,
    ExecutionHour,
    McpCache,
    SandboxExecution,
    SessionStatusHour,
)
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


#: The drawn week of charts is kept this long: its hours' failures can still change (a
#: session's status changes after its hour), so not for long.
CHARTS_CACHE_SECONDS = 300


def _database() -> str:
    # Cache keys name the database: two databases must never share figures.
    return connections[router.db_for_read(CodexSession)].settings_dict["NAME"]


def _statuses(since: datetime.datetime, until: datetime.datetime) -> dict[str, int]:
    """Sessions by status started in [since, until), counted live (for less than an hour)."""
    rows = CodexSession.objects.filter(created_at__gte=since, created_at__lt=until)
    return {r["status"]: r["n"] for r in rows.order_by().values("status").annotate(n=Count("*"))}


def _hour_ceiling(moment: datetime.datetime) -> datetime.datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + HOUR


# --- The session rollup: core.session_status_hours and its changes ----------------------

#: The oldest appended changes, moved into the hours in one statement. The DELETE takes
#: only committed rows and locks each one it moves, so a change appended meanwhile stays
#: for the next fold and no change is folded twice, however many folds run at once. At
#: most ``FOLD_BATCH`` rows a statement: after a bulk load (a million new sessions), a
#: fold stays well inside a panel's statement timeout.
_FOLD_STATUS_CHANGES = """
WITH moved AS (
    DELETE FROM core.session_status_changes
     WHERE id IN (SELECT id FROM core.session_status_changes ORDER BY id LIMIT %(batch)s)
    RETURNING hour, status, change
), folded AS (
    INSERT INTO core.session_status_hours AS h (hour, status, sessions)
    SELECT hour, status, sum(change) FROM moved GROUP BY hour, status
    ON CONFLICT (hour, status) DO UPDATE SET sessions = h.sessions + EXCLUDED.sessions
)
SELECT count(*) FROM moved
"""
FOLD_BATCH = 50_000

# Each read ends with one row whose key is NULL (the key of every other row is a status
# or an hour, never NULL): whether any change waits to be folded, in any hour.

#: Sessions by status since an hour: the folded hours plus the changes not folded yet.
_STATUSES_SINCE = """
SELECT status, sum(n) FILTER (WHERE hour >= %(today)s)::bigint, sum(n)::bigint FROM (
    SELECT hour, status, sessions AS n FROM core.session_status_hours
     WHERE hour >= %(since)s
    UNION ALL
    SELECT hour, status, change FROM core.session_status_changes WHERE hour >= %(since)s
) AS counted GROUP BY status
UNION ALL
SELECT NULL, NULL, count(*) FROM (SELECT FROM core.session_status_changes LIMIT 1) AS waiting
"""

#: Failed sessions per hour in [since, until), the same way.
_FAILURES_BY_HOUR = """
SELECT hour, sum(n)::bigint FROM (
    SELECT hour, sessions AS n FROM core.session_status_hours
     WHERE hour >= %(since)s AND hour < %(until)s AND status = ANY(%(failed)s)
    UNION ALL
    SELECT hour, change FROM core.session_status_changes
     WHERE hour >= %(since)s AND hour < %(until)s AND status = ANY(%(failed)s)
) AS counted GROUP BY hour HAVING sum(n) <> 0
UNION ALL
SELECT NULL, count(*) FROM (SELECT FROM core.session_status_changes LIMIT 1) AS waiting
"""


def fold_status_changes(*, batch: int | None = None) -> int:
    """Fold up to ``batch`` (default ``FOLD_BATCH``) of the oldest session changes into
    core.session_status_hours; how many were folded.

    Keeps the changes table a few minutes long, so the reads stay small; the figures
    are the same before and after. A database that refuses the write (a read-only
    role, a standby, a lock held past the panel's wait) is left as it is (0).
    """
    using = router.db_for_write(SessionStatusHour)
    connection = connections[using]
    try:
        # One statement: in autocommit it is its own transaction; inside one (a
        # test's), a savepoint keeps a refusal from aborting the rest.
        with (
            (
                transaction.atomic(using=using)
                if connection.in_atomic_block
                else contextlib.nullcontext()
            ),
            connection.cursor() as cursor,
        ):
            cursor.execute(_FOLD_STATUS_CHANGES, {"batch": batch or FOLD_BATCH})
            return cursor.fetchone()[0]
    except DatabaseError as exc:
        if not (is_refusal(exc) or is_timeout(exc)):
            raise
        logger.warning("dashboard: could not fold the session count changes", exc_info=True)
        return 0


def fold_all_status_changes() -> None:
    """Fold every change appended so far, a batch at a time (after a bulk load)."""
    while fold_status_changes() == FOLD_BATCH:
        pass


def _read_rollup(sql: str, params: dict[str, Any]) -> list[tuple]:
    """The rows of a rollup read; changes waiting are folded after it (the figures read
    do not depend on it)."""
    with connections[router.db_for_read(SessionStatusHour)].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if any(row[0] is None and row[-1] for row in rows):
        fold_status_changes()
    return [row for row in rows if row[0] is not None]


def sessions_by_status(window: Window) -> list[StatusCount]:
    """Sessions started today and in the last seven days, per status, exactly.

    From the session rollup (core.session_status_hours plus the changes not folded yet,
    which PostgreSQL's triggers keep equal to a count of core.codex_sessions at every
    commit): one read of a few hundred rows, where counting a week of sessions took
    over ten milliseconds at a million sessions. A day that starts inside a UTC hour
    (a zone offset of :30 or :45) has that hour's part counted live.
    """
    since, today = _hour_ceiling(window.week_ago), _hour_ceiling(window.today)
    rows = _read_rollup(_STATUSES_SINCE, {"since": since, "today": today})
    counts = {status: [day or 0, week] for status, day, week in rows}
    for start, end, column in ((window.week_ago, since, 1), (window.today, today, 0)):
        if start < end:
            for status, n in _statuses(start, end).items():
                counts.setdefault(status, [0, 0])[column] += n
    result = [StatusCount(s, day, week) for s, (day, week) in counts.items() if week]
    return sorted(result, key=lambda r: (-r.week, r.status))


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


#: The executions just before and after one in its session (by time, ties on created_at
#: broken by id), as two columns of the query that reads the execution itself: one
#: round trip for the page, each an index probe on (session, created_at). The row
#: comparison (both columns are NOT NULL, so it is the "earlier, or as early with a
#: smaller id" of the ordering) bounds the probe's created_at in the index condition,
#: so it reads the rows next to the execution, not the session's rows before or after
#: it. Plain SQL: the ORM took longer to build two subqueries than PostgreSQL took to
#: answer them. The outer row is the ORM's, named by its table.
_NEIGHBOUR = """(
SELECT n.id FROM core.execution_history n
 WHERE n.session_id = "core"."execution_history"."session_id"
   AND (n.created_at, n.id) {op} ("core"."execution_history"."created_at",
                                  "core"."execution_history"."id")
 ORDER BY n.created_at {order}, n.id {order} LIMIT 1)"""
_NEIGHBOURS = {
    # Fixed text, no values: the outer row is the only input.
    "previous_id": RawSQL(  # noqa: S611
        _NEIGHBOUR.format(op="<", order="DESC"), (), output_field=BigIntegerField()
    ),
    "next_id": RawSQL(  # noqa: S611
        _NEIGHBOUR.format(op=">", order="ASC"), (), output_field=BigIntegerField()
    ),
}


def neighbour_annotations() -> dict[str, RawSQL]:
    """``previous_id`` and ``next_id`` for a queryset of executions (None at either end
    of the session)."""
    return dict(_NEIGHBOURS)


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
    """Failed and timed-out sessions per UTC hour of their start, hours with none left out,
    from the session rollup (see :func:`sessions_by_status`): a week is at most 336 rows
    of its primary key and a few minutes of changes, whatever the number of sessions."""
    rows = _read_rollup(
        _FAILURES_BY_HOUR, {"since": since, "until": until, "failed": list(FAILED_STATUSES)}
    )
    return {hour.astimezone(datetime.UTC): n for hour, n in rows}


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
