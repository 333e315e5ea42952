"""``make bench``: the production server under load and faults, on 127.0.0.1 only.

Run as ``python -m tests.bench.load [--db NAME] [--stall SECONDS] [--quick]``. The real
gunicorn (the Dockerfile's command, production settings) serves a database of the
embedded cluster (``--db``, default ``portal_load``: ``manage.py seed_demo --scale N``
into it first; the bench only reads it, apart from a session row). Concurrent clients
(threads, ``http.client``, keep-alive) log in through a session cookie and request a mix
of pages. Every scenario is bounded in time and in clients:

- **steady**: 8 clients on the dashboard, two lists and a change page;
- **lock stall**: the same load while another session holds ``ACCESS EXCLUSIVE`` on
  each of ``--stall-tables`` in turn (default ``core.execution_hours``, which the
  dashboard reads, and ``core.codex_sessions``, which every page but the dashboard's
  cards reads) for ``--stall`` seconds (default 40), each row with its verdict against
  the documented bounds (``/healthz`` under 100 ms, every page within 5 s);
- **hung database**: a server whose ``DATABASE_URL`` points to a TCP listener that
  accepts and never answers (each configuration, the pool's too);
- **outage and recovery**: a small cluster of its own, stopped and started again under
  load; recovery = first 200 after the cluster is back;
- **export**: the CSV export of the whole execution history (of ``--export-db``,
  default the same database; the 10-million-row admin bench database for the
  documented run): time to the first row, temporary bytes written by PostgreSQL, and
  how long the export's query outlives a client that leaves after 5 MB.

Each runs for the default configuration of the previous release (``CONN_MAX_AGE=0``) and
the recommended one (this release's production default, persistent connections), the
outage also with the pool. ``/healthz`` is probed on the liveness port every 100 ms
throughout. The table goes into docs/benchmarks.md between ``<!-- bench:load:start -->``
and ``<!-- bench:load:end -->``. Concurrent edits are not a bench scenario: their
promise is a correctness one, attacked by tests/admin/test_concurrency.py.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

import devdb
from tests.bench.doc import write_block

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
START, END = "<!-- bench:load:start -->", "<!-- bench:load:end -->"
HTTPS = {"X-Forwarded-Proto": "https"}
CLIENTS = 8
#: The documented bounds (docs/deploy.md, "Bounds") the lock stall is judged against.
HEALTH_BOUND_S = 0.1
PAGE_BOUND_S = 5.0
SECRET_KEY = "bench-" + secrets.token_urlsafe(40)

CONFIGS = {
    "default before (CONN_MAX_AGE=0)": {"CONN_MAX_AGE": "0"},
    "recommended (persistent, CONN_MAX_AGE=60)": {},
}
POOL = {"pool (DATABASE_POOL_MAX_SIZE=4)": {"DATABASE_POOL_MAX_SIZE": "4"}}


def scalar(conn: psycopg.Connection, query: str, params: tuple = ()) -> Any:
    """The first column of the first row (the queries here always return one)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server ---------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    health_port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def base_env(database_url: str, static_root: Path, port: int) -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "LANG": "C.UTF-8",
        "DJANGO_ENV": "production",
        # One key for the whole run: the session cookie is made by another process.
        "SECRET_KEY": SECRET_KEY,
        "CLOUDRUN_SERVICE_URLS": f"https://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "STATIC_ROOT": str(static_root),
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
    }


def collectstatic(database_url: str, static_root: Path) -> None:
    env = base_env(database_url, static_root, 8080)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=600,
    )


def start(database_url: str, static_root: Path, logdir: Path, **extra: str) -> Server:
    port, health_port = free_port(), free_port()
    env = base_env(database_url, static_root, port)
    env.update(
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",
        HEALTH_PORT=str(health_port),
        HEALTH_HOST="127.0.0.1",
        **extra,
    )
    out = (logdir / f"gunicorn-{port}.log").open("w")
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "portal.wsgi"],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    server = Server(proc, port, health_port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited at start; see {out.name}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(health_port, "/healthz", timeout=1)[0] == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise SystemExit("gunicorn did not start within 60 s")


def session_cookie(database_url: str, static_root: Path) -> str:
    """A logged-in superuser's session, made with the production settings."""
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "U = get_user_model()\n"
        "u, _ = U.objects.get_or_create(email='load-bench@example.com', "
        "defaults={'is_staff': True, 'is_superuser': True})\n"
        "s = SessionStore(); s[SESSION_KEY] = str(u.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print(s.session_key)\n"
    )
    env = {**base_env(database_url, static_root, 8080), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode:
        raise SystemExit(result.stderr)
    return result.stdout.strip().splitlines()[-1]


def request(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


# --- load and probes ----------------------------------------------------------------


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int | str, int] = field(default_factory=dict)
    per_path_max: dict[str, float] = field(default_factory=dict)
    health_worst: float = 0.0
    seconds: float = 0.0

    def add(self, path: str, status: int | str, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.per_path_max[path] = max(self.per_path_max.get(path, 0.0), latency)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not (isinstance(s, int) and s < 400))


def load(
    server: Server, paths: list[str], cookie: str, seconds: float, clients: int = CLIENTS
) -> Samples:
    samples = Samples()
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    headers = {**HTTPS, "Cookie": f"sessionid={cookie}"}

    def client(n: int) -> None:
        i = n
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            try:
                status, took = request(server.port, path, headers, timeout=60)
            except (OSError, http.client.HTTPException) as exc:
                status, took = type(exc).__name__, 0.0  # type: ignore[assignment]
            with lock:
                samples.add(path, status, took)

    def probe() -> None:
        while time.monotonic() < stop:
            try:
                status, took = request(server.health_port, "/healthz", timeout=5)
                took = took if status == 200 else 5.0
            except (OSError, http.client.HTTPException):
                took = 5.0
            samples.health_worst = max(samples.health_worst, took)
            time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=probe))
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples.seconds = time.monotonic() - began
    return samples


def page_paths(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT session_id FROM core.codex_sessions LIMIT 1").fetchone()
    paths = ["/admin/", "/admin/core/executionhistory/", "/admin/core/codexsession/"]
    if row:
        paths.append(f"/admin/core/codexsession/{row[0]}/change/")
    return paths


@contextlib.contextmanager
def locked(database_url: str, table: str) -> Iterator[None]:
    with psycopg.connect(database_url, application_name="bench lock holder") as conn:
        schema, _, name = table.partition(".")
        conn.execute(
            psycopg.sql.SQL("LOCK TABLE {}.{} IN ACCESS EXCLUSIVE MODE").format(
                psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name)
            )
        )
        try:
            yield
        finally:
            conn.rollback()


@contextlib.contextmanager
def hung_listener() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        sock.close()


# --- scenarios ----------------------------------------------------------------------


def _is_table_name(name: str) -> bool:
    schema, dot, table = name.partition(".")
    return bool(dot) and schema.isidentifier() and table.isidentifier()


def verdict(s: Samples) -> str:
    """The stall row's notes: the worst of each page and the documented bounds."""
    worst = ", ".join(f"{p}: {t * 1000:.0f}" for p, t in s.per_path_max.items())
    page = max(s.per_path_max.values(), default=0.0)
    health = "met" if s.health_worst and s.health_worst < HEALTH_BOUND_S else "**missed**"
    pages = "met" if page <= PAGE_BOUND_S else "**missed**"
    return (
        f"worst per page ms: {worst}; /healthz under {HEALTH_BOUND_S * 1000:.0f} ms: {health}; "
        f"every page within {PAGE_BOUND_S:g} s: {pages}"
    )


def row(scenario: str, config: str, s: Samples, extra: str = "") -> str:
    rate = len(s.latencies) / s.seconds if s.seconds else 0
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s.statuses.items(), key=str))
    return (
        f"| {scenario} | {config} | {rate:.1f} | {s.pct(0.5) * 1000:.0f} | "
        f"{s.pct(0.99) * 1000:.0f} | {max(s.latencies, default=0) * 1000:.0f} | "
        f"{(f'{s.health_worst * 1000:.1f}' if s.health_worst else 'n/a')} | {statuses} | {extra} |"
    )


def outage(name: str, config_env: dict[str, str], static_root: Path, workdir: Path) -> str:
    """A cluster of its own, migrated; stopped for 5 s under load, started again."""
    pgdir = workdir / "outage-pg"
    db = devdb.ensure_running(pgdir)
    url = db.url()
    env = {**base_env(url, static_root, 8080)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=600,
    )
    cookie = session_cookie(url, static_root)
    server = start(url, static_root, workdir, **config_env)
    result: dict[str, float] = {}
    try:
        load(server, ["/admin/"], cookie, 3)
        samples = Samples()
        stop_flag = threading.Event()
        headers = {**HTTPS, "Cookie": f"sessionid={cookie}"}
        back_at: list[float] = []
        first_ok: list[float] = []

        def poll() -> None:
            while not stop_flag.is_set():
                try:
                    status, took = request(server.port, "/admin/", headers, timeout=30)
                except (OSError, http.client.HTTPException) as exc:
                    status, took = type(exc).__name__, 0.0  # type: ignore[assignment]
                samples.add("/admin/", status, took)
                if back_at and status == 200 and not first_ok:
                    first_ok.append(time.monotonic())
                time.sleep(0.02)

        pollers = [threading.Thread(target=poll) for _ in range(4)]
        began = time.monotonic()
        for t in pollers:
            t.start()
        time.sleep(1)
        devdb.stop(pgdir)
        time.sleep(5)
        devdb.ensure_running(pgdir)
        back_at.append(time.monotonic())
        deadline = time.monotonic() + 60
        while not first_ok and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        stop_flag.set()
        for t in pollers:
            t.join()
        samples.seconds = time.monotonic() - began
        result["recovery"] = (first_ok[0] - back_at[0]) if first_ok else float("nan")
        text = row(
            "outage 5 s + recovery",
            name,
            samples,
            f"recovery {result['recovery'] * 1000:.0f} ms after the database is back",
        )
    finally:
        server.stop()
        devdb.stop(pgdir)
    return text


def export_scenario(server: Server, cookie: str, database_url: str) -> str:
    headers = {**HTTPS, "Cookie": f"sessionid={cookie}"}
    dbname = database_url.rsplit("/", 1)[-1].split("?")[0]

    def temp_bytes() -> int:
        with psycopg.connect(database_url) as conn:
            return scalar(
                conn, "SELECT temp_bytes FROM pg_stat_database WHERE datname = %s", (dbname,)
            )

    before = temp_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    started = time.monotonic()
    conn.request(
        "GET",
        "/admin/core/executionhistory/export.csv",
        headers={"Host": f"127.0.0.1:{server.port}", **headers},
    )
    response = conn.getresponse()
    first = response.read(1)
    first_row = time.monotonic() - started
    received = 1
    while received < 5 * 1024 * 1024:
        chunk = response.read(65536)
        if not chunk:
            break
        received += len(chunk)
    left = time.monotonic()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    # How long the export keeps the database busy after the client left.
    with psycopg.connect(database_url, autocommit=True) as observer:
        while time.monotonic() - left < 30:
            busy = scalar(
                observer,
                "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                ("%execution_history%LIMIT%",),
            )
            if not busy:
                break
            time.sleep(0.05)
    stopped = time.monotonic() - left
    written = temp_bytes() - before
    return (
        f"| export (leaves after 5 MB) | recommended | | first byte {first_row * 1000:.0f} ms "
        f"| | | | status {response.status}, {received / 1024**2:.1f} MB read | "
        f"temp files {written / 1024**2:.1f} MB; database idle {stopped * 1000:.0f} ms after "
        f"the client left; first byte {first!r} |"
    )


def prepare(cluster: devdb.DevDB, name: str, database_url: str, scale: int) -> int:
    """The bench database on the embedded cluster: created, migrated and seeded on first
    use (``seed_demo --scale``; resumable), reused afterwards."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            log(f"== creating {name}")
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PORTAL_DB_NAME=name, DJANGO_ENV="development")
    with psycopg.connect(database_url) as conn:
        migrated = scalar(conn, "SELECT to_regclass('core.execution_history')")
        rows = scalar(conn, "SELECT count(*) FROM core.execution_history") if migrated else 0
    if rows < scale:
        log(f"== seeding {name} to {scale:,} executions (once)")
        for command in (["migrate", "--no-input", "-v0"], ["seed_demo", "--scale", str(scale)]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True)
        with psycopg.connect(database_url) as conn:
            rows = scalar(conn, "SELECT count(*) FROM core.execution_history")
    return rows


def write_doc(text: str) -> None:
    write_block(START, END, text, "## Load and faults (tests/bench/load.py)")


def outage_only(times: int) -> int:
    """The outage scenario alone (it needs no bench database): printed, not written."""
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        static_root = workdir / "static"
        collectstatic("postgres://nobody@127.0.0.1:1/none", static_root)
        for name, config in {**CONFIGS, **POOL}.items():
            for _ in range(times):
                log(f"== outage, {name}")
                print(outage(name, config, static_root, workdir), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("BENCH_LOAD_DB", "portal_load"))
    parser.add_argument("--scale", type=int, default=1_000_000, help="execution_history rows")
    parser.add_argument("--stall", type=float, default=40.0, help="seconds of the lock stall")
    parser.add_argument(
        "--stall-tables",
        default="core.execution_hours,core.codex_sessions",
        help="comma-separated tables locked in turn (schema.table)",
    )
    parser.add_argument(
        "--export-db",
        default=os.environ.get("BENCH_EXPORT_DB", ""),
        help="database whose execution history the export scenario reads (default --db)",
    )
    parser.add_argument("--steady", type=float, default=15.0, help="seconds of steady load")
    parser.add_argument("--quick", action="store_true", help="10 s stall, 8 s steady load")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--outage-only",
        type=int,
        metavar="N",
        default=0,
        help="run only the outage scenario, N times per configuration (1-5), and print it",
    )
    args = parser.parse_args(argv)
    if args.outage_only:
        if not 1 <= args.outage_only <= 5:
            parser.error("--outage-only must be between 1 and 5")
        return outage_only(args.outage_only)
    if args.quick:
        args.stall, args.steady = 10.0, 8.0
    if args.scale < 1000:
        parser.error("--scale must be at least 1000")
    if not (1 <= args.stall <= 120 and 1 <= args.steady <= 120):
        parser.error("--stall and --steady must be between 1 and 120 seconds")

    tables = [t.strip() for t in args.stall_tables.split(",") if t.strip()]
    if not tables or not all(_is_table_name(t) for t in tables):
        parser.error("--stall-tables takes schema.table names separated by commas")
    cluster = devdb.ensure_running()
    database_url = cluster.url().rsplit("/", 1)[0] + f"/{args.db}"
    rows = prepare(cluster, args.db, database_url, args.scale)
    export_url = database_url
    if args.export_db and args.export_db != args.db:
        export_url = cluster.url().rsplit("/", 1)[0] + f"/{args.export_db}"
        try:
            with psycopg.connect(export_url) as conn:
                export_rows = scalar(conn, "SELECT count(*) FROM core.execution_history")
        except psycopg.Error as exc:
            parser.error(f"--export-db {args.export_db}: {exc}".splitlines()[0])
    else:
        export_rows = rows
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-", dir="/tmp"))
    workdir.chmod(0o755)
    lines = [
        f"Database `{args.db}`: {rows:,} execution_history rows; gunicorn as in the Dockerfile "
        f"({CLIENTS} concurrent clients, keep-alive, on 127.0.0.1); lock stall {args.stall:g} s "
        f"on each of {', '.join(f'`{t}`' for t in tables)}; `/healthz` on the liveness port "
        f"every 100 ms; the export reads `{args.export_db or args.db}` ({export_rows:,} rows).",
        "",
        "| scenario | configuration | req/s | p50 ms | p99 ms | worst ms | /healthz worst ms "
        "| statuses | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    try:
        static_root = workdir / "static"
        collectstatic(database_url, static_root)
        cookie = session_cookie(database_url, static_root)
        paths = page_paths(database_url)
        for name, config in CONFIGS.items():
            log(f"== {name}")
            server = start(database_url, static_root, workdir, **config)
            try:
                load(server, paths, cookie, 2)  # warm-up
                lines.append(row("steady", name, load(server, paths, cookie, args.steady)))
                log(lines[-1])
                for table in tables:
                    with locked(database_url, table):
                        stall = load(server, paths, cookie, args.stall)
                    lines.append(row(f"lock stall `{table}`", name, stall, verdict(stall)))
                    log(lines[-1])
                if name.startswith("recommended") and export_url == database_url:
                    lines.append(export_scenario(server, cookie, database_url))
                    log(lines[-1])
            finally:
                server.stop()
        for name, config in {**CONFIGS, **POOL}.items():
            log(f"== hung database, {name}")
            with hung_listener() as port:
                hung_url = f"postgres://nobody:nothing@127.0.0.1:{port}/portal"
                server = start(hung_url, static_root, workdir, **config)
                try:
                    hung = load(server, ["/admin/", "/readyz"], cookie, 10)
                finally:
                    server.stop()
            lines.append(row("hung database", name, hung))
            log(lines[-1])
        if export_url != database_url:
            log(f"== export from {args.export_db}")
            server = start(export_url, static_root, workdir)
            try:
                export_cookie = session_cookie(export_url, static_root)
                lines.append(export_scenario(server, export_cookie, export_url))
                log(lines[-1])
            finally:
                server.stop()
        for name, config in {**CONFIGS, **POOL}.items():
            log(f"== outage, {name}")
            lines.append(outage(name, config, static_root, workdir))
            log(lines[-1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
