"""``make bench``: the portal's admin pages against Django's stock admin, same data.

Run as ``python -m tests.bench.admin [--scale N]``. It

1. points the embedded PostgreSQL at its own database, ``portal_bench`` (created on
   first use; the development database is never touched), migrates it and fills it
   with ``seed_demo --scale N`` (N execution_history rows, default 10 million), reusing
   the data when the row count already matches;
2. requests each page through Django's test client, in-process (no network), in
   alternating rounds: the portal's page, then the same page of a plain ``AdminSite``
   with stock ``ModelAdmin`` options (``tests/bench/urls.py``);
3. prints median and p95 of each and the ratio, and writes the table with the
   machine's description into docs/benchmarks.md between ``<!-- bench:admin:start -->`` and
   ``<!-- bench:admin:end -->``.

The machine is shared, so single timings are noisy: medians over many runs, and both
sides measured in the same rounds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.bench.doc import DOC, write_block

BENCH_DB = os.environ.get("BENCH_DB", "portal_bench")
DEFAULT_SCALE = 10_000_000
#: Where the table is written, between START and END.
#: How long generating the bench data took, kept beside the embedded cluster's data.
SEED_RECORD = (
    Path(os.environ.get("PORTAL_PGDATA", Path(__file__).resolve().parents[2] / ".pgdata"))
    / f"bench-admin-seed-{BENCH_DB}.json"
)
START, END = "<!-- bench:admin:start -->", "<!-- bench:admin:end -->"

PORTAL_RUNS = int(os.environ.get("BENCH_PORTAL_RUNS", 40))  # samples of each portal page
BASELINE_RUNS = 20  # samples of each stock page at most...
BASELINE_MIN_RUNS = 3  # ...and at least
BASELINE_BUDGET_S = 60.0  # ...while a stock page has used less than this much time


def configure() -> None:
    """Point Django at the bench's own database on the embedded cluster."""
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_ENV"] = "development"
    os.environ["PORTAL_DB_NAME"] = BENCH_DB
    # It migrates, fills and analyzes its own database: as the migrator, the owner.
    os.environ["DATABASE_ROLE"] = "migrator"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.settings"
    import django

    django.setup()


def log(message: str) -> None:
    print(message, flush=True)


# --- Data ---------------------------------------------------------------------------


@dataclass
class Data:
    executions: int
    sessions: int
    seconds: float | None  # None: reused
    table_bytes: int
    index_bytes: int


VACUUM_ANALYZE = [
    "VACUUM (ANALYZE) core.execution_history",
    "VACUUM (ANALYZE) core.codex_sessions",
    "VACUUM (ANALYZE) core.sandbox_executions",
    "VACUUM (ANALYZE) core.mcp_cache",
]


def _scalar(sql: str, params: dict | None = None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchone()[0]


def ensure_data(scale: int) -> Data:
    from django.core.management import call_command
    from django.db import connection

    log(f"== database {connection.settings_dict['NAME']}: migrating")
    call_command("migrate", verbosity=0, interactive=False)
    executions = _scalar("SELECT count(*) FROM core.execution_history")
    seconds = None
    if executions == scale:
        log(f"== reusing {executions:,} execution_history rows")
    else:
        log(f"== seed_demo --scale {scale:,} (found {executions:,} rows)")
        started = time.monotonic()
        call_command("seed_demo", scale=scale)
        # What autovacuum would do on a live table: statistics for the planner and the
        # visibility map for index-only scans.
        with connection.cursor() as cursor:
            for statement in VACUUM_ANALYZE:
                cursor.execute(statement)
        seconds = time.monotonic() - started
        executions = _scalar("SELECT count(*) FROM core.execution_history")
        SEED_RECORD.write_text(json.dumps({"executions": executions, "seconds": seconds}))
    if seconds is None and SEED_RECORD.exists():
        # Reused data: say how long it took to make, as recorded when it was made.
        record = json.loads(SEED_RECORD.read_text())
        if record.get("executions") == executions:
            seconds = record["seconds"]
    sessions = _scalar("SELECT count(*) FROM core.codex_sessions")
    table_bytes = _scalar("SELECT pg_table_size('core.execution_history')")
    index_bytes = _scalar("SELECT pg_indexes_size('core.execution_history')")
    return Data(executions, sessions, seconds, table_bytes, index_bytes)


SAMPLE_PROMPTS = """
SELECT left(prompt, 2000) FROM core.execution_history TABLESAMPLE SYSTEM (%(percent)s) LIMIT 5000
"""


def pick_search_word(target: float = 0.01) -> str:
    """A word found in about ``target`` of the prompts (decided on a random sample)."""
    import re
    from collections import Counter

    from django.db import connection

    rows = max(
        _scalar(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'core.execution_history'::regclass"
        ),
        1,
    )
    percent = min(100.0, 100.0 * 20_000 / rows)
    with connection.cursor() as cursor:
        cursor.execute(SAMPLE_PROMPTS, {"percent": percent})
        prompts = [r[0] for r in cursor.fetchall()]
    documents: Counter[str] = Counter()
    for prompt in prompts:
        documents.update(set(re.findall(r"\b[a-z]{6,}\b", prompt.lower())))
    if not documents:
        return "error"
    return min(documents, key=lambda w: (abs(documents[w] / len(prompts) - target), w))


# --- Measuring -----------------------------------------------------------------------


@dataclass
class Page:
    name: str
    portal: str
    baseline: str
    portal_ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)
    portal_queries: int = 0
    baseline_queries: int = 0
    #: The stock page runs COUNT(*) (the 10x target applies to these pages).
    baseline_counts: bool = False
    #: Run before each portal request (the cold dashboard empties the cache).
    before: Callable[[], None] | None = None


def _get(client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code}")
    if response.streaming:
        b"".join(response.streaming_content)
    return (time.perf_counter() - started) * 1000


def _queries(client, url: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _get(client, url)
    return [q["sql"] for q in captured.captured_queries]


def measure(client, page: Page) -> None:
    if page.before is not None:
        page.before()
    page.portal_queries = len(_queries(client, page.portal))
    baseline = _queries(client, page.baseline)
    page.baseline_queries = len(baseline)
    page.baseline_counts = any("COUNT(*)" in sql.upper() for sql in baseline)
    baseline_spent = 0.0
    while True:
        want_portal = len(page.portal_ms) < PORTAL_RUNS
        want_baseline = len(page.baseline_ms) < BASELINE_MIN_RUNS or (
            len(page.baseline_ms) < BASELINE_RUNS and baseline_spent < BASELINE_BUDGET_S
        )
        if not (want_portal or want_baseline):
            break
        if want_portal:
            if page.before is not None:
                page.before()
            page.portal_ms.append(_get(client, page.portal))
        if want_baseline:
            ms = _get(client, page.baseline)
            page.baseline_ms.append(ms)
            baseline_spent += ms / 1000
    log(
        f"   {page.name}: portal {median(page.portal_ms):.1f} ms, "
        f"stock {median(page.baseline_ms):.1f} ms"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def pages() -> list[Page]:
    from django.core.cache import cache
    from django.utils import timezone

    from core.models import CodexSession, ExecutionHistory

    newest = ExecutionHistory.objects.order_by("-created_at", "-id").values_list(
        "created_at", flat=True
    )[:1]
    day = timezone.localtime(newest[0] if newest else timezone.now()).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - datetime.timedelta(days=1)
    window = (
        f"created_at__gte={quote(day.isoformat())}"
        f"&created_at__lt={quote((day + datetime.timedelta(days=1)).isoformat())}"
    )
    session = ExecutionHistory.objects.order_by("-created_at", "-id").values_list(
        "session_id", flat=True
    )[:1]
    session_id = session[0] if session else CodexSession.objects.values_list("pk", flat=True)[0]
    # The session's second execution: it has a previous and (usually) a next one.
    execution_id = list(
        ExecutionHistory.objects.filter(session_id=session_id)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:2]
    )[-1]
    word = os.environ.get("BENCH_SEARCH") or pick_search_word()
    log(f"== pages: one day {day:%Y-%m-%d}, search '{word}', session {session_id}")
    return [
        Page(
            "Execution history, page 1",
            "/admin/core/executionhistory/",
            "/baseline/core/executionhistory/",
        ),
        Page(
            f"Execution history, one day ({day:%Y-%m-%d})",
            f"/admin/core/executionhistory/?{window}",
            f"/baseline/core/executionhistory/?{window}",
        ),
        Page(
            "Execution history, 16,000 to 64,000 tokens",
            "/admin/core/executionhistory/?tokens=4",
            "/baseline/core/executionhistory/?tokens_used__gte=16000&tokens_used__lt=64000",
        ),
        Page(
            f"Execution history, search “{word}”",
            f"/admin/core/executionhistory/?q={word}",
            f"/baseline/core/executionhistory/?q={word}",
        ),
        Page("Agent sessions, page 1", "/admin/core/codexsession/", "/baseline/core/codexsession/"),
        Page(
            "Agent session, change page",
            f"/admin/core/codexsession/{session_id}/change/",
            f"/baseline/core/codexsession/{session_id}/change/",
        ),
        Page(
            "Agent sessions, search by the 8 characters the list shows",
            f"/admin/core/codexsession/?q={str(session_id)[:8]}",
            f"/baseline/core/codexsession/?q={str(session_id)[:8]}",
        ),
        Page(
            "Execution history, executions of failed sessions",
            "/admin/core/executionhistory/?outcome=failed_session",
            "/baseline/core/executionhistory/",
        ),
        Page(
            "Execution, change page (previous/next in its session)",
            f"/admin/core/executionhistory/{execution_id}/change/",
            f"/baseline/core/executionhistory/{execution_id}/change/",
        ),
        Page("Dashboard (admin index)", "/admin/", "/baseline/"),
        Page(
            "Dashboard, new instance (process cache emptied first)",
            "/admin/",
            "/baseline/",
            before=cache.clear,
        ),
        Page(
            "Dashboard, first view ever (stored hourly totals deleted too)",
            "/admin/",
            "/baseline/",
            before=forget_hours,
        ),
    ]


def forget_hours() -> None:
    """What the very first dashboard view of a database finds: nothing stored yet."""
    from django.core.cache import cache

    from core.models import ExecutionHour

    cache.clear()
    ExecutionHour.objects.all().delete()


# --- Report --------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    import django

    version = _scalar("SHOW server_version")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM; PostgreSQL {version} (embedded, "
        f"same machine); Python {platform.python_version()}, Django {django.get_version()}"
    )


def _size(value: int) -> str:
    return f"{value / 1024**3:.1f} GiB" if value >= 1024**3 else f"{value / 1024**2:.0f} MiB"


def table(results: list[Page], data: Data, scale: int) -> str:
    today = datetime.date.today().isoformat()
    generated = (
        f"generating and indexing took {data.seconds / 60:.1f} min"
        if data.seconds is not None
        else "reused from an earlier run"
    )
    lines = [
        f"Measured {today} on {machine()}.",
        "",
        f"Data: {data.executions:,} execution_history rows and {data.sessions:,} sessions "
        f"(`seed_demo --scale {scale:,}`, {generated}); execution_history is "
        f"{_size(data.table_bytes)} of table and {_size(data.index_bytes)} of indexes.",
        "",
        "Each page is requested in-process through Django's test client, rendered in full, "
        f"portal and stock alternating in the same rounds: {PORTAL_RUNS} runs of each portal "
        f"page, {BASELINE_MIN_RUNS} to {BASELINE_RUNS} of each stock page (stopping after "
        f"{BASELINE_BUDGET_S:.0f} s). Single runs are noisy (other work may run on the "
        "machine); medians are what to compare.",
        "",
        *(
            [
                f"Generating and indexing took longer than the ~20 minutes the target allows "
                f"({data.seconds / 60:.1f} min on this machine); the table is measured at "
                "this size anyway. A smaller size: `BENCH_SCALE=N make bench`.",
                "",
            ]
            if data.seconds is not None and data.seconds > 20 * 60
            else []
        ),
        "The target: every portal page's median under 100 ms, and at least 10x "
        "faster than the stock page where the stock page counts rows (runs `COUNT(*)`).",
        "",
        "| page | portal median | portal p95 | stock median | stock p95 | stock / portal "
        "(median) | SQL queries (portal / stock) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for page in results:
        ours, theirs = median(page.portal_ms), median(page.baseline_ms)
        lines.append(
            f"| {page.name} | {ours:.1f} ms | {p95(page.portal_ms):.1f} ms | "
            f"{theirs:.1f} ms | {p95(page.baseline_ms):.1f} ms | {theirs / ours:.1f}x | "
            f"{page.portal_queries} / {page.baseline_queries} | {verdict(page)} |"
        )
    return "\n".join(lines)


def verdict(page: Page) -> str:
    ours, theirs = median(page.portal_ms), median(page.baseline_ms)
    misses = []
    if ours >= 100:
        misses.append("over 100 ms")
    if page.baseline_counts and theirs / ours < 10:
        misses.append("under 10x")
    wanted = "< 100 ms, ≥ 10x" if page.baseline_counts else "< 100 ms"
    return f"{wanted}: " + ("met" if not misses else "**missed** (" + ", ".join(misses) + ")")


def write_doc(text: str) -> None:
    write_block(START, END, text, "## Benchmarks")


def arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    """``--scale`` and ``--no-write``, shared by the benches on this bench's database."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--scale", type=int, default=int(os.environ.get("BENCH_SCALE", DEFAULT_SCALE))
    )
    parser.add_argument(
        "--no-write",
        "--no-readme",
        dest="no_write",
        action="store_true",
        help="print the table only; docs/benchmarks.md is left alone",
    )
    args = parser.parse_args(argv)
    if args.scale < 1000:
        parser.error("--scale must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__.splitlines()[0], argv)

    configure()
    from django.test import Client

    from accounts.models import User

    data = ensure_data(args.scale)
    user, _ = User.objects.get_or_create(
        email="bench@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    log("== measuring")
    results = pages()
    for page in results:
        measure(client, page)
    text = table(results, data, args.scale)
    print()
    print(text)
    if not args.no_write:
        write_doc(text)
        log(f"\n== written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
