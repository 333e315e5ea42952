"""Statistics history: ``manage.py snapshot_stats`` stores one snapshot per database.

A snapshot holds the database size, connection counts, database counters, the
largest tables' sizes and the pg_stat_statements *deltas* since the previous
snapshot, in ``analytics`` tables (Metabase charts them too). The statistics are
never reset: deltas are computed against the cumulative counters stored with the
last row of each statement.

Safe for a scheduler: a transaction-level advisory lock per (alias, database) stops
two runs from capturing the same database at once, and a run within the minimum
interval of the previous snapshot is skipped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from diagnostics.models import QueryStatSnapshot, StatsSnapshot, TableSizeSnapshot
from diagnostics.queries import overview, server, space, statements
from diagnostics.redaction import redact_sql

# Two int4 keys for pg_try_advisory_xact_lock: a constant class and hashtext(alias/db).
LOCK_CLASS = 0x5D1A6  # "snapshot_stats"
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))"


@dataclass(frozen=True)
class Outcome:
    alias: str
    database: str | None
    status: str  # created, skipped, failed
    message: str


def _last_rows(alias: str, database: str) -> dict[tuple[int, str], QueryStatSnapshot]:
    """The latest stored row of every statement of this database (the delta baseline)."""
    rows = (
        QueryStatSnapshot.objects.filter(snapshot__alias=alias, snapshot__database=database)
        .order_by("queryid", "role_name", "-snapshot__captured_at")
        .distinct("queryid", "role_name")
        .select_related("snapshot")
    )
    return {(r.queryid, r.role_name): r for r in rows}


def _deltas(
    alias: str,
    database: str,
    totals: tuple[statements.StatementTotals, ...],
    previous: StatsSnapshot | None,
    top: int,
) -> list[QueryStatSnapshot]:
    baseline = _last_rows(alias, database)
    first = previous is None
    rows = []
    for t in totals:
        key = (t.queryid, t.role or "")
        base = baseline.get(key)
        if previous is None:
            # Nothing to subtract from: store the counters as the baseline, no delta.
            calls, exec_ms, n_rows, hit, read = 0, 0.0, 0, 0, 0
        elif base is None:
            new_since_last = t.stats_since is None or t.stats_since >= previous.captured_at
            if not new_since_last:
                # Older than the previous snapshot but never stored (its baseline was
                # pruned or it was outside the top): start a baseline, count nothing.
                calls, exec_ms, n_rows, hit, read = 0, 0.0, 0, 0, 0
            else:
                calls, exec_ms, n_rows = t.calls, t.total_exec_ms, t.rows
                hit, read = t.shared_blks_hit, t.shared_blks_read
        else:
            reset = t.calls < base.calls_cumulative or (
                t.stats_since is not None and t.stats_since > base.snapshot.captured_at
            )
            if reset:
                calls, exec_ms, n_rows = t.calls, t.total_exec_ms, t.rows
                hit, read = t.shared_blks_hit, t.shared_blks_read
            else:
                calls = t.calls - base.calls_cumulative
                exec_ms = max(t.total_exec_ms - base.total_exec_time_ms_cumulative, 0.0)
                n_rows, hit, read = (
                    _since(t.rows, base, "rows"),
                    _since(t.shared_blks_hit, base, "shared_blks_hit"),
                    _since(t.shared_blks_read, base, "shared_blks_read"),
                )
        if not first and calls <= 0:
            continue  # unchanged: its baseline stays in an earlier snapshot
        rows.append(
            QueryStatSnapshot(
                queryid=t.queryid,
                role_name=t.role or "",
                query=redact_sql(t.query) or "",
                calls=calls,
                total_exec_time_ms=exec_ms,
                rows=n_rows,
                shared_blks_hit=hit,
                shared_blks_read=read,
                calls_cumulative=t.calls,
                total_exec_time_ms_cumulative=t.total_exec_ms,
                rows_cumulative=t.rows,
                shared_blks_hit_cumulative=t.shared_blks_hit,
                shared_blks_read_cumulative=t.shared_blks_read,
            )
        )
    if not first:
        # The busiest statements of the interval; the others keep their earlier baseline,
        # so their work is counted in a later snapshot, never twice.
        rows.sort(key=lambda r: r.total_exec_time_ms, reverse=True)
        rows = rows[:top]
    return rows


def _since(current: int, base: QueryStatSnapshot, field: str) -> int:
    return max(current - getattr(base, f"{field}_cumulative"), 0)


def take(
    alias: str,
    *,
    min_interval: dt.timedelta,
    top_tables: int = 50,
    top_queries: int = 200,
) -> Outcome:
    """Capture one snapshot of database ``alias`` unless one is recent enough."""
    info_result = server.server_info(alias)
    info = info_result.first()
    if info is None:
        return Outcome(
            alias,
            None,
            "failed",
            gettext("cannot read the server: %(error)s") % {"error": info_result.error},
        )
    database = info.database
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(TRY_LOCK, [LOCK_CLASS, f"{alias}/{database}"])
            if not cursor.fetchone()[0]:
                return Outcome(
                    alias, database, "skipped", gettext("skipped: another run is capturing it")
                )
        previous = (
            StatsSnapshot.objects.filter(alias=alias, database=database)
            .order_by("-captured_at")
            .first()
        )
        now = timezone.now()
        if previous is not None and now - previous.captured_at < min_interval:
            age = int((now - previous.captured_at).total_seconds())
            return Outcome(
                alias,
                database,
                "skipped",
                gettext(
                    "skipped: the last snapshot is %(age)s s old (minimum interval %(interval)s s)"
                )
                % {"age": age, "interval": int(min_interval.total_seconds())},
            )
        size = overview.database_size(alias).first()
        if size is None:
            return Outcome(alias, database, "failed", gettext("cannot read the database size"))
        counts = {"active": 0, "idle": 0, "idle in transaction": 0}
        total = 0
        for row in overview.connections_by_state(alias):
            if row.database != database:
                continue
            total += row.count
            state = row.state or ""
            if state.startswith("idle in transaction"):
                counts["idle in transaction"] += row.count
            elif state in counts:
                counts[state] += row.count
        stats = overview.database_stats(alias).first()
        snapshot = StatsSnapshot.objects.create(
            alias=alias,
            database=database,
            captured_at=now,
            database_size_bytes=size.bytes,
            connections_total=total,
            connections_active=counts["active"],
            connections_idle=counts["idle"],
            connections_idle_in_transaction=counts["idle in transaction"],
            max_connections=info.max_connections,
            xact_commit=stats.xact_commit if stats else None,
            xact_rollback=stats.xact_rollback if stats else None,
            blks_hit=stats.blks_hit if stats else None,
            blks_read=stats.blks_read if stats else None,
        )
        tables = [
            t
            for t in space.table_sizes(alias, per_group=top_tables)
            if t.kind == "table" and not t.locked and t.total_bytes is not None
        ]
        tables.sort(key=lambda t: t.total_bytes or 0, reverse=True)
        TableSizeSnapshot.objects.bulk_create(
            TableSizeSnapshot(
                snapshot=snapshot,
                schema_name=t.schema,
                table_name=t.name or "",
                total_bytes=t.total_bytes or 0,
                table_bytes=t.table_bytes or 0,
                index_bytes=t.index_bytes or 0,
                toast_bytes=t.toast_bytes or 0,
                row_estimate=t.row_estimate or 0,
            )
            for t in tables[:top_tables]
        )
        note = ""
        queries: list[QueryStatSnapshot] = []
        if info.pgss_schema:
            totals = statements.statement_totals(
                alias, schema=info.pgss_schema, version=info.pgss_version_tuple
            )
            if totals.ok:
                queries = _deltas(alias, database, totals.rows, previous, top_queries)
                for q in queries:
                    q.snapshot = snapshot
                QueryStatSnapshot.objects.bulk_create(queries, batch_size=1000)
            else:
                note = "; " + gettext("query statistics skipped: %(error)s") % {
                    "error": totals.error
                }
        else:
            note = "; " + gettext(
                "query statistics skipped: pg_stat_statements is not installed here"
            )
    return Outcome(
        alias,
        database,
        "created",
        gettext(
            "snapshot %(id)s: database %(bytes)s bytes, %(connections)s connections, "
            "%(tables)s tables, %(statements)s statement rows"
        )
        % {
            "id": snapshot.pk,
            "bytes": size.bytes,
            "connections": total,
            "tables": min(len(tables), top_tables),
            "statements": len(queries),
        }
        + note,
    )


def prune(*, retention: dt.timedelta) -> int:
    """Delete snapshots older than ``retention`` (their rows go with them)."""
    cutoff = timezone.now() - retention
    old = StatsSnapshot.objects.filter(captured_at__lt=cutoff)
    # Child rows first, in bulk: the ORM's cascade would load every row into memory.
    QueryStatSnapshot.objects.filter(snapshot__in=old).delete()
    TableSizeSnapshot.objects.filter(snapshot__in=old).delete()
    deleted, _ = old.delete()
    return deleted
