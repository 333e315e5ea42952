"""Two weeks of made-up statistics history (the analytics snapshot tables).

Written only while those tables hold nothing for the current database, so it never
interleaves with what ``snapshot_stats`` really captured.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from django.db import connection

from demo.corpus import DEMO_STATEMENTS
from demo.draws import SEED
from demo.results import TableResult, table_label
from diagnostics.models import QueryStatSnapshot, StatsSnapshot, TableSizeSnapshot

CURRENT_SIZES_SQL = """
SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       pg_indexes_size(c.oid), coalesce(pg_total_relation_size(c.reltoastrelid), 0),
       greatest(c.reltuples, 0)::bigint
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(schemas)s)
ORDER BY pg_total_relation_size(c.oid) DESC
LIMIT 15
"""
CURRENT_DATABASE_SQL = "SELECT current_database(), pg_database_size(current_database())"


def _fake_queryid(query: str) -> int:
    digest = hashlib.sha1(query.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def seed_snapshots(now: datetime) -> list[TableResult]:
    """Two weeks of statistics history, every 6 hours, ending 6 hours ago.

    Only when the database has no snapshot yet: made-up history must not interleave with
    what ``snapshot_stats`` captured, and these rows have no natural key to match on.
    """
    alias = connection.alias
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_DATABASE_SQL)
        database, database_size = cursor.fetchone()
        cursor.execute(CURRENT_SIZES_SQL, {"schemas": ["auth", "core", "analytics", "audit"]})
        tables = cursor.fetchall()
    labels = [table_label(m) for m in (StatsSnapshot, TableSizeSnapshot, QueryStatSnapshot)]
    if StatsSnapshot.objects.filter(alias=alias, database=database).exists():
        return [TableResult(label, 0) for label in labels]

    rng = random.Random(SEED + 1)  # noqa: S311 (demo data, reproducible on purpose)
    count = 14 * 4
    snapshots, sizes, queries = [], [], []
    statements = [
        (_fake_queryid(q), q, share, mean_ms, rows_per_call)
        for q, share, mean_ms, rows_per_call in DEMO_STATEMENTS
    ]
    cumulative = {queryid: (0, 0.0) for queryid, *_ in statements}
    commits = rng.randint(2_000_000, 5_000_000)
    hits, reads = commits * 40, commits // 3
    for i in range(count):
        # Older snapshots show a smaller database; the last is close to today's size.
        growth = 0.55 + 0.45 * (i + 1) / count
        at = now - timedelta(hours=6 * (count - i))
        busy = 8 <= at.hour <= 18 and at.weekday() < 5
        calls = rng.randint(40_000, 90_000) if busy else rng.randint(4_000, 15_000)
        commits += calls
        hits += calls * rng.randint(30, 60)
        reads += calls // rng.randint(20, 80)
        active = rng.randint(3, 14) if busy else rng.randint(0, 3)
        idle = rng.randint(10, 30)
        snapshot = StatsSnapshot(
            alias=alias,
            database=database,
            captured_at=at,
            database_size_bytes=int(database_size * growth),
            connections_total=active + idle + 1,
            connections_active=active,
            connections_idle=idle,
            connections_idle_in_transaction=1 if rng.random() < 0.2 else 0,
            max_connections=100,
            xact_commit=commits,
            xact_rollback=commits // 400,
            blks_hit=hits,
            blks_read=reads,
        )
        snapshots.append(snapshot)
        for schema, table, total, heap, index, toast, row_estimate in tables:
            sizes.append(
                TableSizeSnapshot(
                    snapshot=snapshot,
                    schema_name=schema,
                    table_name=table,
                    total_bytes=int(total * growth),
                    table_bytes=int(heap * growth),
                    index_bytes=int(index * growth),
                    toast_bytes=int(toast * growth),
                    row_estimate=int(row_estimate * growth),
                )
            )
        for queryid, query, share, mean_ms, rows_per_call in statements:
            delta_calls = max(1, int(calls * share * rng.uniform(0.8, 1.2)))
            delta_ms = delta_calls * mean_ms * rng.uniform(0.7, 1.6)
            calls_total, ms_total = cumulative[queryid]
            cumulative[queryid] = (calls_total + delta_calls, ms_total + delta_ms)
            queries.append(
                QueryStatSnapshot(
                    snapshot=snapshot,
                    queryid=queryid,
                    role_name="gateway" if "pg_stat_activity" not in query else "portal",
                    query=query,
                    calls=delta_calls,
                    total_exec_time_ms=round(delta_ms, 3),
                    rows=int(delta_calls * rows_per_call),
                    shared_blks_hit=delta_calls * rng.randint(3, 40),
                    shared_blks_read=delta_calls // rng.randint(20, 400),
                    calls_cumulative=cumulative[queryid][0],
                    total_exec_time_ms_cumulative=round(cumulative[queryid][1], 3),
                )
            )
    StatsSnapshot.objects.bulk_create(snapshots)  # PostgreSQL returns the new ids
    TableSizeSnapshot.objects.bulk_create(sizes, batch_size=1000)
    QueryStatSnapshot.objects.bulk_create(queries, batch_size=1000)
    return [
        TableResult(labels[0], len(snapshots)),
        TableResult(labels[1], len(sizes)),
        TableResult(labels[2], len(queries)),
    ]
