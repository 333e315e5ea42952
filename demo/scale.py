"""The bulk top-up behind ``seed_demo --scale``: set-based INSERT ... SELECT statements,
one committed batch each, execution history spread over parallel connections.

The SQL below is static: values (including the fragment arrays) always travel as
parameters, and table names are the gateway's fixed contract, never user input.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from demo.builders.accounts import caller_id
from demo.content import CACHE_TTLS, mcp_entry, sandbox_result, sql_template
from demo.corpus import (
    BRANCHES,
    CLIENT_VERSIONS,
    COMPANIES,
    EXCHANGES,
    FILES,
    FINAL_STATUSES_WEIGHTED,
    FUNCS,
    MODELS_WEIGHTED,
    PROJECTS,
    PROMPT_PREFIXES,
    PROMPT_SUFFIXES,
    RESPONSE_INTROS,
    RESPONSE_OUTROS,
    SANDBOX_ERRORS,
    SANDBOX_IMAGES,
    SANDBOX_QUERIES,
    SERVICE_CALLERS,
    TABLES,
)
from demo.draws import HOUR_WEIGHTS, SEED, expand
from demo.results import ProgressCallback, SeedError, TableResult

SCALE_SESSION_PREFIX = "seed-demo-scale:"
DEFAULT_BATCH_SIZE = 500_000

# In these statements %% is a literal % (they run with parameters); arithmetic is float8,
# never numeric (power() on numeric costs ~10 µs a row). g.h is a 32-bit hash
# of the series number (hashint8, the hash PostgreSQL uses for bigint hash indexes); its
# "digits" (g.h / p %% m for different p) pick fragments. Templates arrive as format()
# strings (see sql_template), so a row's text is built in one pass, not one replace()
# per placeholder.

INSERT_SCALE_SESSIONS = """
INSERT INTO core.codex_sessions
    (session_id, user_id, model, status, metadata, created_at, updated_at)
SELECT md5(%(prefix)s || g.i)::uuid,
       (%(callers)s::text[])[1 + (g.h / 7) %% cardinality(%(callers)s::text[])],
       (%(models)s::text[])[1 + (g.h / 101) %% cardinality(%(models)s::text[])],
       CASE WHEN c.created > %(anchor)s::timestamptz - interval '3 hours' AND g.h %% 10 < 7
            THEN 'active'
            ELSE (%(statuses)s::text[])[1 + (g.h / 1009) %% cardinality(%(statuses)s::text[])]
       END,
       jsonb_build_object(
           'repo', (%(repos)s::text[])[1 + (g.h / 13) %% cardinality(%(repos)s::text[])],
           'branch', (%(branches)s::text[])[1 + (g.h / 17) %% cardinality(%(branches)s::text[])],
           'client', jsonb_build_object(
               'name', 'codex-cli',
               'version',
               (%(versions)s::text[])[1 + (g.h / 19) %% cardinality(%(versions)s::text[])]),
           'sandbox_image',
           (%(images)s::text[])[1 + (g.h / 23) %% cardinality(%(images)s::text[])]),
       c.created,
       least(c.created + make_interval(secs => 30 + g.h %% 5400), %(anchor)s::timestamptz)
FROM (
    SELECT i, hashint8(i)::bigint + 2147483648 AS h
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS i
) AS g
CROSS JOIN LATERAL (
    -- A day in the window, recent days likelier, at an hour drawn from HOUR_WEIGHTS.
    SELECT date_trunc('day', %(anchor)s::timestamptz)
           - make_interval(days => floor(
                 %(days)s * power((g.h %% 100003) / 100003::float8, 1.6::float8))::int)
           + make_interval(
                 hours => (%(hours)s::int[])[1 + (g.h / 100003) %% cardinality(%(hours)s::int[])],
                 mins => ((g.h / 29) %% 60)::int,
                 secs => (g.h %% 59)::int) AS raw
) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.raw > %(anchor)s::timestamptz THEN r.raw - interval '1 day'
                ELSE r.raw END AS created
) AS c
ORDER BY c.created
ON CONFLICT (session_id) DO NOTHING
"""

SCALE_SESSION_EXISTS = "SELECT EXISTS (SELECT 1 FROM core.codex_sessions WHERE session_id = %s)"

# Each row belongs to a hashed session number (so sessions get Poisson-like counts of
# executions) and is dated (g.at) a little after its session started, never after anchor.
# Rows go in in time order: the created_at indexes and the heap then fill in sequence,
# about 30% faster than hash order once the table outgrows shared_buffers.
SCALE_ROWS_WITH_SESSION = """
FROM (
    SELECT g0.k, g0.h, s.session_id,
           least(s.created_at
                 + make_interval(secs => %(min_offset)s + (g0.h / 3) %% %(max_offset)s),
                 %(anchor)s::timestamptz) AS at
    FROM (
        SELECT k,
               hashint8(k)::bigint + 2147483648 AS h,
               1 + (hashint8extended(k, 7) & 9223372036854775807) %% %(sessions)s AS sid
        FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS k
    ) AS g0
    JOIN core.codex_sessions AS s ON s.session_id = md5(%(prefix)s || g0.sid)::uuid
    ORDER BY 4
) AS g
"""

INSERT_SCALE_EXECUTIONS = (
    """
INSERT INTO core.execution_history
    (session_id, prompt, response, tokens_used, execution_time_ms, created_at)
SELECT g.session_id,
       format(
           (%(prefixes)s::text[])[1 + (g.h / 7) %% cardinality(%(prefixes)s::text[])]
           || (%(prompts)s::text[])[f.t]
           || (%(suffixes)s::text[])[1 + (g.h / 11) %% cardinality(%(suffixes)s::text[])],
           f.fn, f.file, f.module, f.tbl, f.n, f.tests),
       CASE WHEN g.h %% 53 <> 0 THEN format(
           (%(intros)s::text[])[1 + (g.h / 13) %% cardinality(%(intros)s::text[])]
           || (%(responses)s::text[])[f.t]
           || (%(outros)s::text[])[1 + (g.h / 17) %% cardinality(%(outros)s::text[])],
           f.fn, f.file, f.module, f.tbl, f.n, f.tests)
       END,
       CASE WHEN g.h %% 53 <> 0
            THEN least(200000, 80 + 2000 * power(-ln(1 - random()), 1.4::float8))::int END,
       CASE WHEN random() < 0.012 THEN 120000 + (random() * 480000)::int
            ELSE least(110000, 250 + 3000 * power(-ln(1 - random()), 1.6::float8))::int END,
       g.at
"""
    + SCALE_ROWS_WITH_SESSION
    + """
CROSS JOIN LATERAL (
    SELECT 1 + g.h %% cardinality(%(prompts)s::text[]) AS t,
           (%(funcs)s::text[])[1 + (g.h / 19) %% cardinality(%(funcs)s::text[])] AS fn,
           (%(files)s::text[])[1 + (g.h / 23) %% cardinality(%(files)s::text[])] AS file,
           (%(modules)s::text[])[1 + (g.h / 23) %% cardinality(%(files)s::text[])] AS module,
           (%(tables)s::text[])[1 + (g.h / 29) %% cardinality(%(tables)s::text[])] AS tbl,
           2 + (g.h / 31) %% 5 AS n,
           20 + (g.h / 37) %% 380 AS tests
) AS f
"""
)

INSERT_SCALE_SANDBOX = (
    """
INSERT INTO core.sandbox_executions (session_id, sql_query, result, error, executed_at)
SELECT g.session_id,
       CASE WHEN g.h %% 100 < 15
            THEN (%(bad_sql)s::text[])[1 + (g.h / 7) %% cardinality(%(bad_sql)s::text[])]
            ELSE (%(sql)s::text[])[1 + (g.h / 7) %% cardinality(%(sql)s::text[])] END,
       CASE WHEN g.h %% 100 >= 15
            THEN ((%(results)s::text[])[
                1 + (g.h / 7) %% cardinality(%(sql)s::text[])
                + cardinality(%(sql)s::text[]) * ((g.h / 101) %% %(result_variants)s)])::jsonb
       END,
       CASE WHEN g.h %% 100 < 15
            THEN (%(errors)s::text[])[1 + (g.h / 7) %% cardinality(%(bad_sql)s::text[])] END,
       g.at
"""
    + SCALE_ROWS_WITH_SESSION
)

# A pool of distinct (tool, arguments, result) triples, each cached many times over the
# window, as the gateway refills an entry after it expires.
INSERT_SCALE_CACHE = """
INSERT INTO core.mcp_cache (tool_name, arguments, result, cached_at, expires_at)
SELECT (%(tools)s::text[])[e.i],
       ((%(arguments)s::text[])[e.i])::jsonb,
       ((%(tool_results)s::text[])[e.i])::jsonb,
       c.cached_at,
       CASE WHEN g.h %% 100 >= 12
            THEN c.cached_at + make_interval(
                secs => (%(ttls)s::int[])[1 + (g.h / 7) %% cardinality(%(ttls)s::int[])])
       END
FROM (
    SELECT k, hashint8(k)::bigint + 2147483648 AS h
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS k
) AS g
CROSS JOIN LATERAL (
    SELECT 1 + (g.h / 11) %% cardinality(%(tools)s::text[]) AS i
) AS e
CROSS JOIN LATERAL (
    SELECT %(anchor)s::timestamptz
           - make_interval(secs => (g.h / 13) %% (%(days)s * 86400)) AS cached_at
) AS c
"""

COUNT_SQL = {
    "core.codex_sessions": "SELECT count(*) FROM core.codex_sessions",
    "core.execution_history": "SELECT count(*) FROM core.execution_history",
    "core.sandbox_executions": "SELECT count(*) FROM core.sandbox_executions",
    "core.mcp_cache": "SELECT count(*) FROM core.mcp_cache",
}
ANALYZE_SQL = (
    "ANALYZE core.codex_sessions, core.execution_history, core.sandbox_executions, core.mcp_cache"
)


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL[table])
        return int(cursor.fetchone()[0])


RESULT_VARIANTS = 4


def _scale_params(callers: Sequence[str]) -> dict[str, Any]:
    """The fragment arrays the bulk statements pick from."""
    rng = random.Random(SEED)  # noqa: S311 (demo data, reproducible on purpose)
    tools, arguments, results = [], [], []
    for _ in range(500):
        tool, args, result = mcp_entry(rng)
        tools.append(tool)
        arguments.append(json.dumps(args))
        results.append(json.dumps(result))
    repos = [
        f"{domain.split('.')[0]}/{slug}" for _, domain, *_ in COMPANIES for slug, _ in PROJECTS[:4]
    ]
    return {
        "prefix": SCALE_SESSION_PREFIX,
        "callers": list(callers) or SERVICE_CALLERS,
        "models": expand(MODELS_WEIGHTED),
        "statuses": expand(FINAL_STATUSES_WEIGHTED),
        "repos": repos,
        "branches": BRANCHES,
        "versions": CLIENT_VERSIONS,
        "images": SANDBOX_IMAGES,
        "hours": [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)],
        "prefixes": [sql_template(t) for t in PROMPT_PREFIXES],
        "prompts": [sql_template(p) for p, _ in EXCHANGES],
        "suffixes": [sql_template(t) for t in PROMPT_SUFFIXES],
        "intros": [sql_template(t) for t in RESPONSE_INTROS],
        "responses": [sql_template(r) for _, r in EXCHANGES],
        "outros": [sql_template(t) for t in RESPONSE_OUTROS],
        "funcs": FUNCS,
        "files": FILES,
        "modules": [f.removesuffix(".py").replace("/", ".") for f in FILES],
        "tables": TABLES,
        "sql": [q for q, _ in SANDBOX_QUERIES],
        # RESULT_VARIANTS results per query: variant v of query q sits at q + v * len(queries).
        "results": [
            json.dumps(sandbox_result(rng, cols, timezone.now()))
            for _ in range(RESULT_VARIANTS)
            for _, cols in SANDBOX_QUERIES
        ],
        "result_variants": RESULT_VARIANTS,
        "bad_sql": [q for q, _ in SANDBOX_ERRORS],
        "errors": [e for _, e in SANDBOX_ERRORS],
        "tools": tools,
        "arguments": arguments,
        "tool_results": results,
        "ttls": CACHE_TTLS,
    }


def _batches(start: int, stop: int, size: int) -> Iterable[tuple[int, int]]:
    for first in range(start, stop + 1, size):
        yield first, min(stop, first + size - 1)


def _run_batch(sql: str, params: dict[str, Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        # Demo data: losing the last batch in a crash is fine; waiting for each flush is not.
        cursor.execute("SET LOCAL synchronous_commit TO off")
        # Room to sort a batch's keys in memory (ORDER BY in SCALE_ROWS_WITH_SESSION).
        cursor.execute("SET LOCAL work_mem TO '256MB'")
        cursor.execute(sql, params)
        return cursor.rowcount


def _ensure_scale_sessions(
    sessions: int, batch_size: int, params: dict[str, Any], progress: ProgressCallback | None
) -> TableResult:
    table = "core.codex_sessions"
    created = 0
    for first, last in _batches(1, sessions, batch_size):
        # Batches commit in order, so if a batch's last session exists the batch is done.
        with connection.cursor() as cursor:
            cursor.execute(SCALE_SESSION_EXISTS, [scale_session_id(last)])
            if cursor.fetchone()[0]:
                continue
        created += _run_batch(INSERT_SCALE_SESSIONS, {**params, "start": first, "stop": last})
        if progress:
            progress(table, last, sessions)
    return TableResult(table, created, _count(table))


def scale_session_id(n: int) -> uuid.UUID:
    """The id of bulk session number ``n`` (what ``md5(prefix || n)::uuid`` gives)."""
    digest = hashlib.md5(f"{SCALE_SESSION_PREFIX}{n}".encode(), usedforsecurity=False)
    return uuid.UUID(digest.hexdigest())


def default_workers() -> int:
    """Parallel insert streams for the bulk top-up: one per core, at most four.

    Most of a row's cost is PostgreSQL parsing its prompt and response into the stored
    full-text document (~80 µs); an INSERT ... SELECT runs on one core, so separate
    connections are what use the others.
    """
    return max(1, min(4, os.cpu_count() or 1))


def _run_batch_in_thread(sql: str, params: dict[str, Any]) -> int:
    # Each thread has its own connection (Django's are per thread); close it when done.
    try:
        return _run_batch(sql, params)
    finally:
        connection.close()


def _top_up(
    table: str,
    sql: str,
    target: int,
    batch_size: int,
    params: dict[str, Any],
    progress: ProgressCallback | None,
    workers: int = 1,
) -> TableResult:
    existing = _count(table)
    missing = target - existing
    # Series numbers continue after the rows already there, so texts keep varying.
    ranges = []
    next_k, left = existing + 1, missing
    while left > 0:
        size = min(batch_size, left)
        ranges.append((next_k, next_k + size - 1))
        next_k, left = next_k + size, left - size
    added = 0

    def done(inserted: int) -> None:
        nonlocal added
        if inserted <= 0:
            raise SeedError(f"{table}: a batch inserted no rows; are the bulk sessions missing?")
        added += inserted
        if progress:
            progress(table, added, missing)

    if workers <= 1 or len(ranges) <= 1:
        for start, stop in ranges:
            done(_run_batch(sql, {**params, "start": start, "stop": stop}))
        return TableResult(table, added, existing + added)
    # Batches commit independently, in any order: an interrupted run leaves whole batches,
    # and the next run counts them and adds the rest.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed") as pool:
        futures = [
            pool.submit(_run_batch_in_thread, sql, {**params, "start": start, "stop": stop})
            for start, stop in ranges
        ]
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return TableResult(table, added, existing + added)


def scale_up(
    *,
    executions: int,
    sessions: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    anchor: datetime | None = None,
    workers: int | None = None,
) -> list[TableResult]:
    """Top execution history up to ``executions`` rows, sandbox runs to 1/50 and the
    tool cache to 1/100 of it, over ``sessions`` bulk sessions (default 1/10).

    Existing rows count towards the targets; nothing is deleted or updated.
    """
    if executions < 1:
        raise ValueError("executions must be positive")
    sessions = sessions or max(1, executions // 10)
    callers = [
        caller_id(u) for u in User.objects.filter(is_active=True).only("id", "email", "keycloak_id")
    ] + SERVICE_CALLERS
    params = {
        **_scale_params(callers),
        "anchor": anchor or timezone.now(),
        "sessions": sessions,
        "days": 180,
    }
    results = [
        _ensure_scale_sessions(sessions, batch_size, params, progress),
        # An agent round lands within 2.5 hours of its session's start, a sandbox run
        # within the first hour; cache entries spread over the last 30 days.
        _top_up(
            "core.execution_history",
            INSERT_SCALE_EXECUTIONS,
            executions,
            batch_size,
            {**params, "min_offset": 5, "max_offset": 9000},
            progress,
            workers=default_workers() if workers is None else workers,
        ),
        _top_up(
            "core.sandbox_executions",
            INSERT_SCALE_SANDBOX,
            executions // 50,
            batch_size,
            {**params, "min_offset": 30, "max_offset": 3600},
            progress,
        ),
        _top_up(
            "core.mcp_cache",
            INSERT_SCALE_CACHE,
            executions // 100,
            batch_size,
            {**params, "days": 30},
            progress,
        ),
    ]
    if any(r.created for r in results):
        with connection.cursor() as cursor:
            cursor.execute(ANALYZE_SQL)
    return results
