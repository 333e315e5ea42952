"""``make bench``: a realistic migration on a live database, this project's migrate
against Django's stock one.

Run as ``python -m tests.bench.migrate [--scale N]``. It

1. points the embedded PostgreSQL at its own database, ``portal_bench_migrate``
   (``seed_demo --scale N``, default 1 million execution_history rows, reused when
   there; the development and shared bench databases are never touched);
2. serves the portal with the production server (gunicorn as in the Dockerfile, as
   ``tests/bench/load.py`` starts it, on 127.0.0.1) and starts a steady load: admin
   page requests over HTTP (the sessions list, one session's executions, a session's
   change page) from READERS clients, and gateway-like INSERTs into ``codex_sessions``
   and ``execution_history`` at a fixed rate, over psycopg, as the gateway writes;
3. after a quiet baseline, opens an idle-in-transaction session that read
   ``execution_history`` and holds it for HOLD seconds, and applies the migration
   ``makemigrations`` writes for a new column, an index on it, a foreign key and a NOT
   NULL column with a default (one transaction; the codex_sessions column first):
   once through Django's stock executor and schema editor, once through this
   project's (lock timeout, retries), then the same change in the linted form (one
   table per migration, the index concurrently, the foreign key added NOT VALID by
   ``AddForeignKeyNotValid`` then validated by ``ValidateForeignKey``) through this
   project's, with its default lock timeout and with a short one for busy tables;
4. reports for each: the longest wait of any request, p99 before and during, errors
   and the total migration time, and writes the table into docs/benchmarks.md between
   ``<!-- bench:migrate:start -->`` and ``<!-- bench:migrate:end -->``.

Every run undoes its migration afterwards, so each starts from the same schema.
Bounded: HOLD seconds of holder, at most MIGRATE_BUDGET seconds per migration.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench.doc import write_block

if TYPE_CHECKING:
    from tests.bench.load import Server

BENCH_DB = os.environ.get("BENCH_DB", "portal_bench_migrate")
START, END = "<!-- bench:migrate:start -->", "<!-- bench:migrate:end -->"
HOLD = 8.0  # seconds the idle transaction keeps its lock
BASELINE = 4.0  # seconds of load before the holder
READERS = 4
INSERTS_PER_SECOND = 20
MIGRATE_BUDGET = 120.0
WARMUP = 5.0  # seconds of load before the first run


def configure() -> None:
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


def connect(**extra):
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"],
        port=s["PORT"],
        user=s["USER"],
        password=s["PASSWORD"],
        dbname=s["NAME"],
        autocommit=True,
        **extra,
    )


@dataclass
class Sample:
    at: float
    seconds: float
    ok: bool


@dataclass
class Load:
    stop: threading.Event = field(default_factory=threading.Event)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def record(self, started: float, ok: bool) -> None:
        with self.lock:
            self.samples.append(Sample(started, time.monotonic() - started, ok))

    def reader(self, server: Server, cookie: str, paths: list[str], offset: int) -> None:
        from tests.bench.load import HTTPS, request

        headers = {**HTTPS, "Cookie": f"sessionid={cookie}"}
        i = offset
        while not self.stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            started = time.monotonic()
            try:
                status, _ = request(server.port, path, headers, timeout=120)
                self.record(started, status == 200)
            except OSError:
                self.record(started, False)
            time.sleep(0.05)

    def gateway(self, session_ids: list[str]) -> None:
        interval = 1.0 / INSERTS_PER_SECOND
        with connect(application_name="bench-gateway") as conn:
            conn.execute("SET statement_timeout = '120s'")
            next_at = time.monotonic()
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    # The previous release's INSERTs: only the columns it knows.
                    sid = conn.execute(
                        "INSERT INTO core.codex_sessions (user_id, model, status) "
                        "VALUES ('bench', 'gpt', 'running') RETURNING session_id"
                    ).fetchone()[0]
                    conn.execute(
                        "INSERT INTO core.execution_history (session_id, prompt) "
                        "VALUES (%(s)s, 'bench prompt')",
                        {"s": sid},
                    )
                    self.record(started, True)
                except Exception:
                    self.record(started, False)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self, session_ids: list[str], server: Server, cookie: str, paths: list[str]) -> None:
        for n in range(READERS):
            self.threads.append(
                threading.Thread(target=self.reader, args=(server, cookie, paths, n))
            )
        self.threads.append(threading.Thread(target=self.gateway, args=(session_ids,)))
        for t in self.threads:
            t.daemon = True
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=150)


def makemigrations_form():
    from django.db import migrations, models

    return [
        (
            True,
            [
                migrations.AddField(
                    "codexsession", "bench_retries", models.IntegerField(default=0)
                ),
                migrations.AddField("executionhistory", "bench_note", models.TextField(null=True)),
                migrations.AddIndex(
                    "executionhistory",
                    models.Index(fields=["bench_note"], name="bench_note_idx"),
                ),
                migrations.AddField(
                    "executionhistory",
                    "bench_project",
                    models.ForeignKey(
                        "core.project", null=True, on_delete=models.SET_NULL, db_index=False
                    ),
                ),
            ],
        )
    ]


def linted_form():
    from django.contrib.postgres.operations import AddIndexConcurrently
    from django.db import migrations, models

    from portal.db.operations import AddForeignKeyNotValid, ValidateForeignKey

    return [
        (
            True,
            [
                migrations.AddField(
                    "codexsession",
                    "bench_retries",
                    models.IntegerField(default=0, db_default=0),
                )
            ],
        ),
        (
            True,
            [
                migrations.AddField("executionhistory", "bench_note", models.TextField(null=True)),
                AddForeignKeyNotValid(
                    "executionhistory",
                    "bench_project",
                    models.ForeignKey(
                        "core.project", null=True, on_delete=models.SET_NULL, db_index=False
                    ),
                ),
            ],
        ),
        (
            False,
            [
                AddIndexConcurrently(
                    "executionhistory",
                    models.Index(fields=["bench_note"], name="bench_note_idx"),
                )
            ],
        ),
        (True, [ValidateForeignKey("executionhistory", "bench_project")]),
    ]


def build(steps):
    from django.db import migrations
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    parent = next(n for a, n in loader.graph.leaf_nodes() if a == "core")
    built = []
    for i, (atomic, operations) in enumerate(steps, start=1):
        cls = type(
            "Migration",
            (migrations.Migration,),
            {"atomic": atomic, "operations": operations, "dependencies": [("core", parent)]},
        )
        name = f"9{i:03d}_bench"
        built.append(cls(name, "core"))
        parent = name
    return built


def apply(migrations_list, project: bool, **policy_changes) -> tuple[float, str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader

    from portal.db import locks
    from portal.db.executor import LockSafeExecutor

    policy = (
        replace(locks.Policy.from_settings(), **policy_changes)
        if project
        else locks.Policy(enabled=False)
    )
    executor_class = LockSafeExecutor if project else MigrationExecutor
    loader = MigrationLoader(connection)
    leaf = next(n for a, n in loader.graph.leaf_nodes() if a == "core")
    state = loader.project_state(("core", leaf))
    started = time.monotonic()
    outcome = "completed"
    with locks.using_policy(policy):
        executor = executor_class(connection)
        try:
            for migration in migrations_list:
                state = executor.apply_migration(state, migration)
        except Exception as exc:  # a blocked job is a result too
            outcome = f"failed: {type(exc).__name__}"
    return time.monotonic() - started, outcome


def undo(migrations_list) -> None:
    """Back to the starting schema, whatever the run left."""
    from django.db import connection

    statements = [
        'ALTER TABLE "core"."codex_sessions" DROP COLUMN IF EXISTS "bench_retries"',
        'DROP INDEX IF EXISTS "core"."bench_note_idx"',
        'ALTER TABLE "core"."execution_history" DROP COLUMN IF EXISTS "bench_note"',
        'ALTER TABLE "core"."execution_history" DROP COLUMN IF EXISTS "bench_project_id"',
        "DELETE FROM django_migrations WHERE app = 'core' AND name LIKE '9%%_bench'",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[98]


@dataclass
class Result:
    label: str
    longest: float
    p99_before: float
    p99_during: float
    #: p99 while the idle holder kept its lock (the migration waiting and retrying),
    #: and after it (the migration's own work: the index build, the validation).
    p99_holding: float | None
    p99_after: float | None
    errors: int
    requests: int
    seconds: float
    outcome: str


@dataclass
class Portal:
    server: Server
    cookie: str
    paths: list[str]


def run(
    label: str, steps, project: bool, session_ids: list[str], portal: Portal, **policy
) -> Result:
    log(f"== {label}")
    undo(None)
    load = Load()
    load.start(session_ids, portal.server, portal.cookie, portal.paths)
    time.sleep(BASELINE)
    holder = connect(application_name="bench-idle-holder")
    holder.autocommit = False
    holder.execute("SELECT count(*) FROM core.execution_history WHERE id < 1000").fetchone()
    timer = threading.Timer(HOLD, holder.rollback)
    timer.start()
    migration_start = time.monotonic()
    seconds, outcome = apply(build(steps), project, **policy)
    migration_end = time.monotonic()
    timer.cancel()
    holder.rollback()
    holder.close()
    time.sleep(1.0)
    load.finish()
    undo(None)
    before = [s.seconds for s in load.samples if s.at < migration_start]
    during = [s for s in load.samples if migration_start <= s.at <= migration_end]
    released = migration_start + HOLD
    holding = [s.seconds for s in during if s.at < released]
    after = [s.seconds for s in during if s.at >= released]
    result = Result(
        label=label,
        longest=max((s.seconds for s in during), default=0.0),
        p99_before=p99(before),
        p99_during=p99([s.seconds for s in during]),
        p99_holding=p99(holding) if holding else None,
        p99_after=p99(after) if after else None,
        errors=sum(1 for s in load.samples if not s.ok),
        requests=len(during),
        seconds=seconds,
        outcome=outcome,
    )
    log(f"   {result}")
    return result


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"


def table(results: list[Result], executions: int) -> str:
    lines = [
        f"Live migration on {executions:,} execution_history rows; {READERS} clients "
        "requesting admin pages over HTTP (gunicorn as in the Dockerfile, production "
        "settings: the sessions list, one session's executions, a session's change page) "
        f"and gateway INSERTs at {INSERTS_PER_SECOND}/s; an idle transaction holds "
        f"execution_history for {HOLD:g} s from the migration's start. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}.",
        "",
        "| run | longest request | p99 before | p99 during | p99 ratio | p99 while held "
        "| p99 after | errors | requests during | migration time | outcome |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r.p99_during / r.p99_before if r.p99_before else float("nan")
        lines.append(
            f"| {r.label} | {r.longest:.2f} s | {r.p99_before * 1000:.0f} ms | "
            f"{r.p99_during * 1000:.0f} ms | {ratio:.1f}x | {_ms(r.p99_holding)} | "
            f"{_ms(r.p99_after)} | {r.errors} | {r.requests} | "
            f"{r.seconds:.1f} s | {r.outcome} |"
        )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    write_block(START, END, text, "## Live migration")


#: The settings docs/deploy.md recommends for a migration on a busy table
#: (MIGRATION_LOCK_TIMEOUT, MIGRATION_LOCK_RETRIES, MIGRATION_RETRY_BACKOFF).
BUSY = {"lock_timeout": 0.05, "retries": 10, "backoff": 0.25}


def serve(scratch: Path, session_ids: list[str]) -> Portal:
    """The production server on the bench database, and a logged-in superuser."""
    from django.db import connection

    from tests.bench import load

    s = connection.settings_dict
    url = f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    static_root = scratch / "static"
    log("== collectstatic and gunicorn (production settings) on 127.0.0.1")
    load.collectstatic(url, static_root)
    server = load.start(url, static_root, scratch)
    cookie = load.session_cookie(url, static_root)
    session = session_ids[0]
    paths = [
        "/admin/core/codexsession/",
        f"/admin/core/executionhistory/?session={session}",
        f"/admin/core/codexsession/{session}/change/",
    ]
    portal = Portal(server, cookie, paths)
    # Warm-up: every thread of both workers has imported, connected and rendered once,
    # so the first run's "before" is not a cold start.
    warm = Load()
    warm.start(session_ids, server, cookie, paths)
    time.sleep(WARMUP)
    warm.finish()
    return portal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    args = parser.parse_args()
    configure()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM core.execution_history")
        executions = cursor.fetchone()[0]
    if executions < args.scale:
        log(f"== seed_demo --scale {args.scale:,} (found {executions:,})")
        call_command("seed_demo", scale=args.scale)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) core.execution_history")
            cursor.execute("SELECT count(*) FROM core.execution_history")
            executions = cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_id::text FROM core.codex_sessions LIMIT 2000")
        session_ids = [r[0] for r in cursor.fetchall()]
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as scratch:
        portal = serve(Path(scratch), session_ids)
        try:
            results = [
                run(
                    "stock migrate, makemigrations form",
                    makemigrations_form(),
                    False,
                    session_ids,
                    portal,
                ),
                run(
                    "this project's migrate, makemigrations form",
                    makemigrations_form(),
                    True,
                    session_ids,
                    portal,
                ),
                run(
                    "this project's migrate, linted form",
                    linted_form(),
                    True,
                    session_ids,
                    portal,
                ),
                run(
                    f"this project's migrate, linted form, {BUSY['lock_timeout'] * 1000:.0f} ms "
                    f"lock timeout, {BUSY['retries']} retries from {BUSY['backoff']:g} s",
                    linted_form(),
                    True,
                    session_ids,
                    portal,
                    **BUSY,
                ),
            ]
        finally:
            portal.server.stop()
    text = table(results, executions)
    print(text)
    write_doc(text)


if __name__ == "__main__":
    main()
