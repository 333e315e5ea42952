"""Tests of devdb against real PostgreSQL processes (no Django needed).

Each test gets its own data directory under /tmp (mode 755: as root the server runs as the
unprivileged `portalpg` user, which cannot enter pytest's 700 tmp dirs), and every server a
test starts is stopped in the fixture finaliser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import devdb

REPO_ROOT = Path(__file__).resolve().parents[2]
PG15_BIN = Path("/usr/lib/postgresql/15/bin")


def _postmasters(cluster: Path) -> list[int]:
    """PIDs of postmaster processes serving `cluster` (children retitle themselves)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and str(cluster).encode() in argv:
            pids.append(int(entry.name))
    return pids


def _kill_leftovers(pgdata: Path) -> None:
    cluster = pgdata / "cluster"
    with contextlib.suppress(Exception):  # teardown goes on; signals below are the fallback
        devdb.stop(pgdata)
    for pid in _postmasters(cluster):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + 30
    while _postmasters(cluster) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def make_pgdata(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    for var in ("PORTAL_PGDATA", "PG_BIN", "PORTAL_DB_NAME"):
        monkeypatch.delenv(var, raising=False)
    made: list[tuple[Path, Path]] = []

    def factory(name: str = "pg") -> Path:
        base = Path(tempfile.mkdtemp(prefix="devdb-test-", dir="/tmp"))
        base.chmod(0o755)
        pgdata = base / name
        made.append((base, pgdata))
        return pgdata

    yield factory
    for base, pgdata in made:
        _kill_leftovers(pgdata)
        shutil.rmtree(devdb._resolve(pgdata).socket_dir, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _connect(
    db: devdb.DevDB,
    password: str | None = None,
    dbname: str | None = None,
    user: str | None = None,
):
    return psycopg.connect(
        host=db.host,
        port=db.port,
        user=user or db.user,
        password=db.password if password is None else password,
        dbname=dbname or db.dbname,
        connect_timeout=5,
        autocommit=True,
    )


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "devdb", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO_ROOT,
        timeout=180,
        check=False,
    )


def test_cold_start_requires_password(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    t0 = time.monotonic()
    db = devdb.ensure_running(pgdata)
    cold = time.monotonic() - t0

    assert db.host == "127.0.0.1"
    assert db.user == "postgres"
    assert db.dbname == "portal"
    assert db.password not in repr(db)
    assert db.url() == f"postgres://postgres:{db.password}@127.0.0.1:{db.port}/portal"
    assert (pgdata / "password").stat().st_mode & 0o777 == 0o600
    assert int((pgdata / "port").read_text()) == db.port

    with _connect(db) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (
            "portal",
            "postgres",
        )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(db, password="wrong-" + db.password).close()

    t0 = time.monotonic()
    again = devdb.ensure_running(pgdata)
    warm = time.monotonic() - t0
    assert again == db
    assert warm < 0.5, f"ensure_running on a running server took {warm:.3f}s"
    print(f"cold start {cold:.2f}s, ensure_running when running {warm * 1000:.1f}ms")

    assert devdb.status(pgdata).startswith(f"running on 127.0.0.1:{db.port}")


def test_pg_stat_statements_everywhere(make_pgdata: Callable[..., Path]) -> None:
    db = devdb.ensure_running(make_pgdata())
    with _connect(db, dbname="postgres") as conn:
        assert "pg_stat_statements" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        assert conn.execute("SHOW pg_stat_statements.track").fetchone()[0] == "all"
        assert conn.execute("SHOW max_connections").fetchone()[0] == "200"
        assert conn.execute("SHOW fsync").fetchone()[0] == "off"
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        conn.execute("CREATE DATABASE fresh_db")
    with _connect(db, dbname="fresh_db") as conn:
        row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        assert row.fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0] >= 0


def test_stop_start_keeps_port(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    db = devdb.ensure_running(pgdata)
    with _connect(db) as conn:  # leave some closed connections (TIME_WAIT) behind
        conn.execute("SELECT 1")
    assert devdb.stop(pgdata) is True
    assert devdb.stop(pgdata) is False
    assert devdb.status(pgdata).startswith("stopped")
    assert _postmasters(pgdata / "cluster") == []

    again = devdb.ensure_running(pgdata)
    assert again.port == db.port
    assert again.password == db.password


def test_port_repicked_when_taken(make_pgdata: Callable[..., Path]) -> None:
    import socket

    pgdata = make_pgdata()
    db = devdb.ensure_running(pgdata)
    devdb.stop(pgdata)
    with socket.socket() as squatter:
        # The server's own just-closed connections may sit in TIME_WAIT on this port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", db.port))
        squatter.listen()
        moved = devdb.ensure_running(pgdata)
        assert moved.port != db.port
        assert int((pgdata / "port").read_text()) == moved.port
        _connect(moved).close()


def test_stale_postmaster_pid_with_reused_pid(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    db = devdb.ensure_running(pgdata)
    pidfile = pgdata / "cluster" / "postmaster.pid"
    content = pidfile.read_text().splitlines()
    devdb.stop(pgdata)
    # After a crash or container restart the recorded PID may belong to another process of
    # the server's user; postgres alone would then refuse to start ("lock file already exists").
    owner = (pgdata / "cluster").stat().st_uid
    as_owner = {"user": owner} if owner != os.geteuid() else {}
    sleeper = subprocess.Popen(["sleep", "60"], **as_owner)  # type: ignore[call-overload]
    try:
        pidfile.write_text("\n".join([str(sleeper.pid), *content[1:]]) + "\n")
        assert devdb.status(pgdata).startswith("stopped")
        again = devdb.ensure_running(pgdata)
        assert again.port == db.port
        _connect(again).close()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_concurrent_cold_starts_yield_one_server(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    script = (
        "import os, sys; from pathlib import Path; import devdb; "
        "db = devdb.ensure_running(Path(sys.argv[1])); "
        "pid = (Path(sys.argv[1]) / 'cluster' / 'postmaster.pid').read_text().split()[0]; "
        "print(db.port, pid)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(pgdata)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    assert outputs[0] == outputs[1]
    assert _postmasters(pgdata / "cluster") == [int(outputs[0][1])]

    # Same again with threads of one process racing a (warm) start.
    devdb.stop(pgdata)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(devdb.ensure_running(pgdata).port)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert results == [int(outputs[0][0])] * 4
    assert len(_postmasters(pgdata / "cluster")) == 1


def test_long_pgdata_path(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata("d" * 60 + "/" + "e" * 60)
    assert len(str(pgdata)) > 110
    db = devdb.ensure_running(pgdata)
    with _connect(db) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_untraversable_pgdata_parent_is_reported(make_pgdata: Callable[..., Path]) -> None:
    private = make_pgdata("private")
    private.mkdir(mode=0o700)
    with pytest.raises(devdb.DevDBError, match=r"cannot enter .*private.*chmod o\+x"):
        devdb.ensure_running(private / "pg")


def test_missing_binaries(
    make_pgdata: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = Path(tempfile.mkdtemp(prefix="devdb-nobin-"))
    try:
        monkeypatch.setenv("PG_BIN", str(empty))
        with pytest.raises(devdb.DevDBError, match="PG_BIN") as info:
            devdb.ensure_running(make_pgdata())
        assert "'postgres'" in str(info.value)
        assert str(empty) in str(info.value)
        assert "\n" not in str(info.value)

        result = _run_cli("start", env={"PG_BIN": str(empty), "PORTAL_PGDATA": str(empty)})
        assert result.returncode == 1
        assert result.stderr.startswith("devdb: ")
    finally:
        shutil.rmtree(empty)


def test_cli(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    env = {"PORTAL_PGDATA": str(pgdata)}

    result = _run_cli("status", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("not initialised")

    result = _run_cli("frobnicate", env=env)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    result = _run_cli(env=env)
    assert result.returncode == 2

    result = _run_cli("start", env=env)
    assert result.returncode == 0, result.stderr
    password = (pgdata / "password").read_text().strip()
    assert password not in result.stdout
    assert "postgres://postgres:***@127.0.0.1:" in result.stdout

    result = _run_cli("url", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == devdb.ensure_running(pgdata).url()

    result = subprocess.run(
        [sys.executable, "-m", "devdb", "psql"],
        input="SELECT 'psql-ok';\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "psql-ok" in result.stdout

    result = _run_cli("status", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("running on 127.0.0.1:")

    result = _run_cli("stop", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, "stopped")
    result = _run_cli("stop", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, "not running")


@pytest.mark.skipif(not (PG15_BIN / "postgres").exists(), reason="no PostgreSQL 15 installed")
def test_pg_bin_selects_other_version(
    make_pgdata: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = make_pgdata()
    monkeypatch.setenv("PG_BIN", str(PG15_BIN))
    db = devdb.ensure_running(pgdata)
    assert db.major == 15
    with _connect(db) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("15")
        assert "pg_stat_statements" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    assert (pgdata / "cluster" / "PG_VERSION").read_text().strip() == "15"

    # Same cluster, default (newer) binaries: refused with a clear message.
    devdb.stop(pgdata)
    monkeypatch.delenv("PG_BIN")
    if devdb.find_binaries()[1] != 15:
        with pytest.raises(devdb.DevDBError, match="PORTAL_PGDATA"):
            devdb.ensure_running(pgdata)


def _plan_left(db: devdb.DevDB) -> list[str]:
    """What ``db_roles`` would still change in the cluster's database (as the superuser)."""
    from dbroles.declaration_plan import plan_roles

    passwords = {key: secret for key, (_name, secret) in db.roles.items()}
    with _connect(db) as conn:
        return [c.summary for c in plan_roles(conn, passwords=passwords).changes]


def test_a_new_cluster_has_the_declared_roles(make_pgdata: Callable[..., Path]) -> None:
    pgdata = make_pgdata()
    db = devdb.ensure_running(pgdata)
    for key in devdb.ROLE_KEYS:
        assert (pgdata / f"password.{key}").stat().st_mode & 0o777 == 0o600
    migrator, migrator_password = db.credentials("migrator")
    app, app_password = db.credentials("application")
    assert (migrator, app) == ("portal_migrator", "portal_app")
    assert app_password not in repr(db)
    assert db.url(role="application").startswith(f"postgres://{app}:")
    assert db.masked_url(role="migrator") == f"postgres://{migrator}:***@127.0.0.1:{db.port}/portal"
    with pytest.raises(devdb.DevDBError, match="unknown role 'root'"):
        db.credentials("root")
    assert _plan_left(db) == []

    with _connect(db) as conn:
        owners = dict(
            conn.execute(
                "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                "WHERE nspname IN ('auth', 'core', 'analytics', 'audit')"
            ).fetchall()
        )
    assert owners == dict.fromkeys(("auth", "core", "analytics", "audit"), migrator)

    with _connect(db, user=migrator, password=migrator_password) as conn:
        # What the migrate job does first: each app's schema, and a table in it.
        conn.execute('CREATE SCHEMA IF NOT EXISTS "core"')
        conn.execute("CREATE TABLE core.made_by_migrate (id int)")
    with _connect(db, user=app, password=app_password) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (app,)
        conn.execute("INSERT INTO core.made_by_migrate VALUES (1)")  # default privileges
        for statement in (
            "CREATE TABLE core.by_app (id int)",
            "CREATE TABLE public.by_app (id int)",
            "ALTER TABLE core.made_by_migrate ADD COLUMN x int",
            "CREATE SCHEMA by_app",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_cluster_made_before_the_roles_is_upgraded_on_the_next_start(
    make_pgdata: Callable[..., Path],
) -> None:
    pgdata = make_pgdata()
    db = devdb.ensure_running(pgdata)
    names = [name for name, _ in db.roles.values()]
    # The cluster as devdb made it before the roles: everything the superuser's.
    with _connect(db) as conn:
        conn.execute("DROP OWNED BY portal_app, portal_migrator, portal_monitor")
        conn.execute("DROP ROLE portal_app, portal_migrator, portal_monitor")
        conn.execute("CREATE SCHEMA core")
        conn.execute("CREATE TABLE core.legacy (id serial PRIMARY KEY)")
        conn.execute("CREATE TABLE public.django_legacy (id int)")
        conn.execute("CREATE FUNCTION core.legacy_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    for key in devdb.ROLE_KEYS:
        (pgdata / f"password.{key}").unlink()
    assert devdb.stop(pgdata)

    upgraded = devdb.ensure_running(pgdata)
    migrator, _ = upgraded.credentials("migrator")
    app, app_password = upgraded.credentials("application")
    with _connect(upgraded) as conn:
        owners = conn.execute(
            "SELECT c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class c "
            "WHERE c.oid IN ('core.legacy'::regclass, 'core.legacy_id_seq'::regclass, "
            "'public.django_legacy'::regclass) ORDER BY 1"
        ).fetchall()
        fn_owner = conn.execute(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'legacy_fn'"
        ).fetchone()
        found = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1", [names]
        ).fetchall()
    assert owners == [
        ("core.legacy", migrator),
        ("core.legacy_id_seq", migrator),
        ("django_legacy", migrator),
    ]
    assert fn_owner == (migrator,)
    assert sorted(found) == sorted((n,) for n in names)
    with _connect(upgraded, user=app, password=app_password) as conn:
        conn.execute("INSERT INTO core.legacy DEFAULT VALUES")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE core.legacy")

    # Idempotent: another start changes nothing and keeps the passwords.
    assert devdb.stop(pgdata)
    again = devdb.ensure_running(pgdata)
    assert again.roles == upgraded.roles
    assert _plan_left(again) == []
