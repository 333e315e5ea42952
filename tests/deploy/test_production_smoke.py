"""Production smoke test: the image's own steps, run on this machine.

There is no Docker engine here, so this test does what the image does, read from the
Dockerfile itself (tests/deploy/dockerfile.py): the final stage's ENV, its collectstatic step
with the placeholder values written on that RUN line, and its CMD, i.e.
``gunicorn --config gunicorn.conf.py portal.wsgi``, started with the test's .venv.
The environment is what a Cloud Run service gets (DJANGO_ENV=production from the image,
SECRET_KEY, CLOUDRUN_SERVICE_URLS, DATABASE_URL) and nothing of the test process's.
gunicorn is told to listen on 127.0.0.1 through GUNICORN_CMD_ARGS, gunicorn's own
override, so the command line stays the Dockerfile's (in the container it binds
0.0.0.0:$PORT).

The database is a dedicated embedded PostgreSQL cluster with its own data directory,
migrated with the production settings, so the test can stop it and start it again
without disturbing the suite's cluster.

The slow request of the SIGTERM test is /readyz while this test holds an ACCESS
EXCLUSIVE lock on django_migrations: a real request kept waiting by the database, as a
stuck query would be in production, and no test-only view or switch in the application.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
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
from dataclasses import dataclass
from pathlib import Path

import brotli
import psycopg
import pytest

import devdb
from tests.deploy import dockerfile

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
# Cloud Run's front end marks every request it forwards over https like this; sent on
# every request but the probes', as it would be, so an HTTPS redirect in the production
# settings does not change what these tests see.
HTTPS = {"X-Forwarded-Proto": "https"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 15):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


# --- the database, the static files, the environment ----------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Under /tmp and world-traversable: as root the server runs as the `portalpg` user,
    # which cannot enter pytest's private temporary directories.
    base = Path(tempfile.mkdtemp(prefix="portal-smoke-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    with contextlib.suppress(Exception):
        devdb.stop(base / "pg")
    shutil.rmtree(devdb._resolve(base / "pg").socket_dir, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def smoke_db(workdir: Path) -> devdb.DevDB:
    return devdb.ensure_running(workdir / "pg")


def production_env(port: int, database_url: str, static_root: Path) -> dict[str, str]:
    """What the container sees on Cloud Run: the image's ENV plus the service's settings."""
    env = {"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in dockerfile.image_env().items() if k != "PATH"})
    env.update(
        PORT=str(port),
        SECRET_KEY=secrets.token_urlsafe(50),
        CLOUDRUN_SERVICE_URLS=f"https://127.0.0.1:{port}",
        DATABASE_URL=database_url,
        STATIC_ROOT=str(static_root),
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",
        # The master's liveness listener, on loopback and a port of its own per server.
        HEALTH_PORT=str(_free_port()),
        HEALTH_HOST="127.0.0.1",
    )
    return env


@pytest.fixture(scope="module")
def static_root(workdir: Path) -> Path:
    """The Dockerfile's collectstatic step, into a temporary STATIC_ROOT."""
    step = dockerfile.run_step("collectstatic")
    assert step.argv[:2] == ["python", "manage.py"]
    root = workdir / "static"
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **dockerfile.image_env()}
    env.update(step.env, PATH=os.environ["PATH"], STATIC_ROOT=str(root))
    result = subprocess.run(
        [sys.executable, *step.argv[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "staticfiles.json").is_file()
    return root


@pytest.fixture(scope="module")
def migrated(smoke_db: devdb.DevDB, static_root: Path) -> None:
    """`manage.py migrate`, as the migrate job runs it: production settings, same image,
    the migrator's credentials (the service's below are the application role's)."""
    env = production_env(_free_port(), smoke_db.url(role="migrator"), static_root)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Applying accounts.0001_initial... OK" in result.stdout


# --- the server -----------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    stdout: Path
    stderr: Path

    def logs(self) -> list[str]:
        return [
            line
            for path in (self.stdout, self.stderr)
            for line in path.read_text(errors="replace").splitlines()
            if line.strip()
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    workdir: Path, smoke_db: devdb.DevDB, static_root: Path, **extra_env: str
) -> Server:
    port = _free_port()
    env = {**production_env(port, smoke_db.url(role="application"), static_root), **extra_env}
    argv = dockerfile.cmd()
    assert argv[0] == "gunicorn"
    name = f"gunicorn-{port}"
    stdout, stderr = workdir / f"{name}.out", workdir / f"{name}.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), *argv[1:]], cwd=REPO, env=env, stdout=out, stderr=err
        )
    server = Server(proc, port, stdout, stderr)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail("gunicorn exited at start:\n" + "\n".join(server.logs()))
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(port, "/healthz", timeout=2).status == 200:
                return server
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail("gunicorn did not answer /healthz:\n" + "\n".join(server.logs()))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(workdir, smoke_db, static_root, migrated) -> Iterator[Server]:
    server = start_server(workdir, smoke_db, static_root)
    yield server
    server.stop()


# --- the checks -----------------------------------------------------------------------


def test_liveness_answers(server):
    response = get(server.port, "/healthz")

    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_readiness_follows_the_database_down_and_up_again(server, workdir, smoke_db):
    assert get(server.port, "/readyz").status == 200

    assert devdb.stop(workdir / "pg") is True
    try:
        # The client's timeout bounds "quickly": far below a probe's usual 10 s+ budget.
        down = get(server.port, "/readyz", timeout=5)
        alive = get(server.port, "/healthz", timeout=5)
    finally:
        again = devdb.ensure_running(workdir / "pg")
    assert down.status == 503
    assert down.json() == {"status": "unavailable", "reason": "database unreachable"}
    assert alive.status == 200  # liveness does not depend on the database

    assert again.port == smoke_db.port, "the restarted cluster moved to another port"
    deadline = time.monotonic() + 30
    while (status := get(server.port, "/readyz").status) != 200:
        assert time.monotonic() < deadline, f"/readyz stayed {status} after the restart"
        time.sleep(0.2)


def test_admin_login_page_renders_with_security_headers(server):
    response = get(server.port, "/admin/login/", HTTPS)

    assert response.status == 200
    page = response.body.decode()
    assert "Agent Gateway Portal" in page
    assert 'name="csrfmiddlewaretoken"' in page
    # Hashed names from the manifest collectstatic wrote.
    assert re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", page)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]


def _production_setting(static_root: Path, smoke_db: devdb.DevDB, name: str) -> object:
    env = production_env(_free_port(), smoke_db.url(role="application"), static_root)
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps(settings.{name}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_hsts_is_sent_on_requests_cloud_run_marks_https(server, static_root, smoke_db):
    max_age = _production_setting(static_root, smoke_db, "SECURE_HSTS_SECONDS")
    assert max_age, "production must send HSTS"

    over_https = get(server.port, "/admin/login/", HTTPS)
    assert over_https.headers["Strict-Transport-Security"].startswith(f"max-age={max_age}")


def test_hashed_static_file_is_served_compressed_with_far_future_caching(server):
    page = get(server.port, "/admin/login/", HTTPS).body.decode()
    found = re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", page)
    assert found is not None
    path = found.group(0)

    plain = get(server.port, path, {**HTTPS, "Accept-Encoding": "identity"})
    gzipped = get(server.port, path, {**HTTPS, "Accept-Encoding": "gzip"})
    brotlied = get(server.port, path, {**HTTPS, "Accept-Encoding": "gzip, deflate, br"})

    assert plain.status == gzipped.status == brotlied.status == 200
    assert plain.headers["Content-Encoding"] is None
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gzipped.body) == plain.body
    assert brotlied.headers["Content-Encoding"] == "br"
    assert brotli.decompress(brotlied.body) == plain.body
    assert len(brotlied.body) < len(gzipped.body) < len(plain.body)
    for response in (plain, gzipped, brotlied):
        cache_control = response.headers["Cache-Control"]
        assert "immutable" in cache_control
        found = re.search(r"max-age=(\d+)", cache_control)
        assert found is not None
        max_age = int(found.group(1))
        assert max_age >= 365 * 24 * 3600
        assert "Accept-Encoding" in response.headers["Vary"]


def test_logs_are_json_lines_with_severity_and_the_request_trace(server):
    trace = {"X-Cloud-Trace-Context": f"{TRACE_ID}/7;o=1"}
    assert get(server.port, "/admin/login/", {**HTTPS, **trace}).status == 200
    assert get(server.port, "/no-such-page", {**HTTPS, **trace}).status == 404

    deadline = time.monotonic() + 10
    while True:
        entries = [json.loads(line) for line in server.logs()]  # every line is JSON
        traced = [e for e in entries if e.get("trace") == TRACE_ID]
        if len(traced) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    assert all(e["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for e in entries)
    assert any(e["message"].startswith("Listening at: http://127.0.0.1:") for e in entries)
    access = {e["httpRequest"]["requestUrl"]: e for e in traced if e["logger"] == "gunicorn.access"}
    assert access["/admin/login/"]["httpRequest"]["status"] == 200
    assert access["/admin/login/"]["httpRequest"]["latency"].endswith("s")
    assert access["/no-such-page"]["httpRequest"]["status"] == 404
    assert access["/no-such-page"]["logging.googleapis.com/spanId"] == f"{7:016x}"
    warnings = [e for e in traced if e["logger"] == "django.request"]
    assert [(e["severity"], e["message"]) for e in warnings] == [
        ("WARNING", "Not Found: /no-such-page")
    ]


def test_sigterm_lets_a_slow_request_finish_then_stops(workdir, smoke_db, static_root, migrated):
    graceful_timeout = _gunicorn_setting("graceful_timeout")
    assert isinstance(graceful_timeout, int)
    # A readiness timeout that outlasts the few steps below on a loaded machine; the
    # request still ends long before the grace period would.
    server = start_server(workdir, smoke_db, static_root, READYZ_TIMEOUT="6")
    try:
        with (
            psycopg.connect(smoke_db.url()) as blocker,
            psycopg.connect(smoke_db.url(), autocommit=True) as observer,
        ):
            blocker.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
            result: dict[str, object] = {}

            def slow_request() -> None:
                try:
                    result["response"] = get(server.port, "/readyz", timeout=60)
                except Exception as exc:  # reported by the asserts below
                    result["error"] = exc

            thread = threading.Thread(target=slow_request)
            thread.start()

            def readyz_lock_waiters() -> int:
                row = observer.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query = 'SELECT 1 FROM django_migrations LIMIT 1' "
                    "AND wait_event_type = 'Lock'"
                ).fetchone()
                assert row is not None  # count(*) returns a row
                return row[0]

            _wait_until(
                lambda: readyz_lock_waiters() == 1,
                "the readiness check never waited for the lock",
            )

            server.proc.send_signal(signal.SIGTERM)
            _wait_until(
                lambda: any("Handling signal: term" in line for line in server.logs()),
                "gunicorn did not take the SIGTERM",
            )
            # Once no worker accepts new requests, every worker is shutting down.
            _wait_until(lambda: not _answers(server.port), "workers kept accepting requests")
            assert thread.is_alive() and server.proc.poll() is None

            blocker.rollback()  # the database answers: the in-flight request can finish
            thread.join(timeout=30)

        returncode = server.proc.wait(timeout=graceful_timeout + 10)
    finally:
        server.stop()

    assert "error" not in result, result
    response = result["response"]
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.json() == {"status": "ready"}
    assert returncode == 0
    logs = "\n".join(server.logs())
    assert logs.count("Worker exiting (pid:") == _gunicorn_setting("workers")
    assert "SIGKILL" not in logs
    assert "Shutting down: Master" in logs


def test_liveness_port_answers_while_every_request_thread_waits_on_a_lock(
    workdir, smoke_db, static_root, migrated
):
    """Every request thread of every worker waits on a lock; the liveness port, served
    by the master, still answers each probe within a probe's timeout."""
    health_port = _free_port()
    threads = int(str(_gunicorn_setting("threads")))
    server = start_server(
        workdir,
        smoke_db,
        static_root,
        READYZ_TIMEOUT="8",
        HEALTH_PORT=str(health_port),
        HEALTH_HOST="127.0.0.1",
        # A gthread worker accepts up to worker_connections (1000) connections and queues
        # them behind its threads: the first worker to boot (start_server returns once one
        # answers) would take every request below while the other's threads stay idle.
        # Capped at its threads, each worker takes only what it serves; the rest wait in
        # the listen backlog for the other worker.
        GUNICORN_CMD_ARGS=f"--worker-connections {threads}",
    )
    threads_total = int(str(_gunicorn_setting("workers"))) * threads
    try:
        with (
            psycopg.connect(smoke_db.url()) as blocker,
            psycopg.connect(smoke_db.url(), autocommit=True) as observer,
        ):
            blocker.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
            results: list[object] = []

            def stuck_request() -> None:
                try:
                    results.append(get(server.port, "/readyz", timeout=60).status)
                except Exception as exc:  # counted below
                    results.append(exc)

            stuck = [threading.Thread(target=stuck_request) for _ in range(threads_total + 4)]
            for t in stuck:
                t.start()

            def lock_waiters() -> int:
                row = observer.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query = 'SELECT 1 FROM django_migrations LIMIT 1' "
                    "AND wait_event_type = 'Lock'"
                ).fetchone()
                assert row is not None  # count(*) returns a row
                return row[0]

            _wait_until(
                lambda: lock_waiters() == threads_total,
                "the request threads never all waited for the lock",
            )
            probes = [get(health_port, "/healthz", timeout=1) for _ in range(20)]
            blocker.rollback()
            for t in stuck:
                t.join(timeout=60)
    finally:
        server.stop()

    assert [p.status for p in probes] == [200] * 20
    assert probes[0].json() == {"status": "ok", "workers": _gunicorn_setting("workers")}
    # The stuck requests all ended with an answer: ready once the lock went, or 503.
    assert all(r in {200, 503} for r in results), results


def _answers(port: int) -> bool:
    try:
        return get(port, "/healthz", timeout=1).status == 200
    except (OSError, http.client.HTTPException):
        return False


def _wait_until(condition, message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def _gunicorn_setting(name: str) -> object:
    import runpy

    return runpy.run_path(str(REPO / "gunicorn.conf.py"))[name]
