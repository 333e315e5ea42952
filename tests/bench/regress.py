"""``make bench BENCH_AGAINST=REV``: every admin page, this code against an earlier commit.

Run as ``python -m tests.bench.regress --against REV``. The admin bench
(``tests/bench/admin.py``) compares the portal with Django's stock admin; this one
answers the other question a change must answer: *did this change make a page slower
than it was?* It

1. checks REV out into a temporary git worktree (the same interpreter and packages:
   only the project's code differs);
2. starts one worker process per tree, each with its own Django set up on the same
   bench database (``portal_bench``, migrated by the admin bench), logged in as the
   same superuser, as a web process (``PORTAL_WEB_PROCESS=1``, as gunicorn.conf.py
   marks it: connections start with the web bounds, as in production; a tree that
   predates the mark ignores it);
3. requests each page in alternating rounds, one request per tree per round, the order
   switching every round, so both trees see the same machine at the same moment;
   each round goes to the next of several worker processes per tree (``--processes``),
   started in alternating order, and where the machine allows every worker runs on
   the first CPU and its PostgreSQL backend on the second: one long-lived process and
   its backend can land on a luckier or unluckier placement for their whole life
   (seen here: the same commit against itself measured 0.70x to 1.32x with one
   unpinned process per tree), and that bias does not average out over rounds;
4. prints the medians and the ratio ``now / before`` and writes the table between
   ``<!-- bench:regress:start -->`` and ``<!-- bench:regress:end -->`` in
   docs/benchmarks.md.

The earlier code runs on the current schema (the migrations only add), which is what
an old release sees during a rolling deploy. A page the earlier code does not have is
left out; a page either side answers with anything but 200 stops the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:regress:start -->", "<!-- bench:regress:end -->"
#: The bound a change must keep: no page slower than this ratio of its earlier median.
BOUND = 1.10
WARMUP = 3


# --- The worker: one tree's Django, one request per line ------------------------------


def worker(tree: str) -> None:
    """Serve ``GET url`` lines from stdin with one JSON line each: ms and status."""
    # This file runs as a script: its own folder and this tree leave the path, so every
    # project module is the other tree's.
    mine = {Path(__file__).resolve().parent, Path(__file__).resolve().parents[2]}
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in mine]
    sys.path.insert(0, tree)
    os.chdir(tree)
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_ENV"] = "development"
    os.environ["PORTAL_DB_NAME"] = os.environ.get("BENCH_DB", "portal_bench")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.settings"
    os.environ["PORTAL_WEB_PROCESS"] = "1"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    user = get_user_model().objects.get(email="bench@example.com")
    client = Client()
    client.force_login(user)
    print(json.dumps({"ready": True, "pinned": _pin()}), flush=True)
    for line in sys.stdin:
        command, _, url = line.strip().partition(" ")
        if command == "CLEAR":
            cache.clear()
            print(json.dumps({"ok": True}), flush=True)
            continue
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)  # type: ignore[attr-defined]
        ms = (time.perf_counter() - started) * 1000
        print(json.dumps({"ms": ms, "status": response.status_code}), flush=True)


def _pin() -> bool:
    """This worker on the first CPU, its PostgreSQL backend (the test client keeps one
    connection) on the second, as every other worker: the same placement for both
    trees. False where there is one CPU or the backend is not ours to move."""
    from django.db import connection

    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        os.sched_setaffinity(backend, {1})
        os.sched_setaffinity(0, {0})
    except (PermissionError, ProcessLookupError, OSError):
        return False
    return True


class Worker:
    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tree,
        )
        self.pinned = bool(self._read().get("pinned"))

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"bench: the worker for {self.tree} stopped")
        return json.loads(line)

    def ask(self, command: str, url: str = "") -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command} {url}\n")
        self.process.stdin.flush()
        return self._read()

    def get(self, url: str) -> float:
        answer = self.ask("GET", url)
        if answer["status"] != 200:
            raise SystemExit(f"bench: {url} answered {answer['status']} in {self.tree}")
        return answer["ms"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


# --- The lead process ------------------------------------------------------------------


@dataclass
class Page:
    name: str
    url: str
    clear_cache: bool = False
    before_ms: list[float] = field(default_factory=list)
    now_ms: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.now_ms) / statistics.median(self.before_ms)


def the_pages() -> list[Page]:
    """The admin bench's pages and every other model's list, from this tree's Django."""
    from tests.bench import admin as bench

    bench.configure()
    from django.contrib import admin

    found = [
        Page(p.name, p.portal, clear_cache=p.before is not None)
        for p in bench.pages()
        # The first-ever dashboard deletes the stored totals: not repeatable in a pair.
        if "first view ever" not in p.name
    ]
    seen = {p.url for p in found}
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        if url not in seen:
            found.append(Page(f"{str(model._meta.verbose_name_plural).capitalize()}, page 1", url))
    return found


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def run(against: str, runs: int, only: str = "", processes: int = 3) -> tuple[str, list[Page]]:
    try:
        commit = git("rev-parse", "--verify", f"{against}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"bench: --against {against!r} is not a commit of this repository"
        ) from None
    pages = [p for p in the_pages() if only.lower() in p.name.lower()]
    scratch = Path(tempfile.mkdtemp(prefix="bench-regress-"))
    tree = scratch / "before"
    git("worktree", "add", "--detach", str(tree), commit)
    workers: list[Worker] = []
    try:
        pairs: list[tuple[Worker, Worker]] = []
        for i in range(processes):
            # Started in alternating order: neither tree is always the older process.
            if i % 2:
                now_worker, before_worker = Worker(ROOT), Worker(tree)
            else:
                before_worker, now_worker = Worker(tree), Worker(ROOT)
            pairs.append((before_worker, now_worker))
            workers += [before_worker, now_worker]
        if not all(w.pinned for w in workers):
            print("   (workers not pinned to CPUs: one CPU, or not allowed here)", flush=True)
        kept = []
        for page in pages:
            probe = pairs[0][0].ask("GET", page.url)
            if probe["status"] != 200:
                print(f"   {page.name}: not in {commit[:7]} ({probe['status']}), left out")
                continue
            for before, now in pairs:
                for _ in range(WARMUP):
                    now.get(page.url)
                    before.get(page.url)
            for round_ in range(runs):
                before, now = pairs[round_ % len(pairs)]
                pair = [(before, page.before_ms), (now, page.now_ms)]
                for side, into in pair if (round_ // len(pairs)) % 2 else reversed(pair):
                    if page.clear_cache:
                        side.ask("CLEAR")
                    into.append(side.get(page.url))
            print(
                f"   {page.name}: before {statistics.median(page.before_ms):.1f} ms, "
                f"now {statistics.median(page.now_ms):.1f} ms ({page.ratio:.2f}x)",
                flush=True,
            )
            kept.append(page)
    finally:
        for w in workers:
            w.close()
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)
    return commit, kept


def table(commit: str, pages: list[Page], runs: int, processes: int) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM core.execution_history")
        rows = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    subject = git("log", "-1", "--format=%h %s", commit)
    head = git("log", "-1", "--format=%h", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no")
    dirty = " (with uncommitted changes)" if changed else ""
    missed = [p for p in pages if p.ratio > BOUND]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"PostgreSQL {version}, {rows:,} execution_history rows: {head}{dirty} against "
        f"`{subject}`. {runs} alternating rounds per page, one request per tree per round, "
        f"shared among {processes} worker processes per tree, "
        "both trees on the same database, interpreter and packages.",
        "",
        f"| page | before median | now median | now / before | bound (≤ {BOUND:.2f}x) |",
        "|---|---|---|---|---|",
    ]
    for p in pages:
        verdict = "met" if p.ratio <= BOUND else "**missed**"
        lines.append(
            f"| {p.name} | {statistics.median(p.before_ms):.1f} ms | "
            f"{statistics.median(p.now_ms):.1f} ms | {p.ratio:.2f}x | {verdict} |"
        )
    lines.append("")
    lines.append(
        "Every page within the bound."
        if not missed
        else f"Over the bound: {', '.join(p.name for p in missed)}."
    )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    # Imported here: a worker runs this file as a script, with no project on its path.
    from tests.bench.doc import write_block

    write_block(START, END, text, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="the earlier commit (any git revision)")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_REGRESS_RUNS", 30)))
    parser.add_argument("--only", default="", help="only the pages whose name contains this")
    parser.add_argument(
        "--processes", type=int, default=3, help="worker processes per tree (default 3)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if not args.against:
        parser.error("--against REV is required (the earlier commit to compare with)")
    if args.runs < 5:
        parser.error("--runs must be at least 5 (a median of fewer says little)")
    if not 1 <= args.processes <= 8:
        parser.error("--processes must be between 1 and 8")
    commit, pages = run(args.against, args.runs, args.only, args.processes)
    if not pages:
        raise SystemExit("bench: no page measured")
    text = table(commit, pages, args.runs, args.processes)
    print()
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"\n== written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
