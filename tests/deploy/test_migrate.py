"""`manage.py migrate` run twice at once (a retried Cloud Run job, two deploys): one
applies the migrations, the other waits for it, then finds nothing to do.

Real processes against a fresh database on the suite's embedded cluster, with the
production settings the migrate job uses. The test holds the advisory lock itself until
both processes are seen waiting for it, so the two runs really overlap however fast the
machine is; then it lets go and they race.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import devdb
from portal.management.commands.migrate import MIGRATE_LOCK_KEY

REPO = Path(__file__).resolve().parents[2]

# A waiting migrate polls pg_try_advisory_lock (a blocking wait would deadlock with a
# running CREATE INDEX CONCURRENTLY): it shows in pg_stat_activity with that query.
WAITING_FOR_LOCK = """
SELECT count(*)
  FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND query LIKE 'SELECT pg_try_advisory_lock(%%'
"""


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    db = devdb.ensure_running()
    name = f"migrate_lock_{secrets.token_hex(4)}"
    with psycopg.connect(db.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        # As a deployment's: the roles converged by the superuser, migrate run by the migrator.
        devdb.prepare_database(db, name)
        yield db.url(name, role="migrator")
    finally:
        with psycopg.connect(db.url("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _migrate(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"GOOGLE_CLOUD_PROJECT", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY="migrate-test-" + "k" * 40,
        ALLOWED_HOSTS="localhost",
        DATABASE_URL=database_url,
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--no-input", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None  # a count(*) returns a row
    return row[0]


def _wait_for_waiters(conn: psycopg.Connection, count: int, procs: list) -> None:
    deadline = time.monotonic() + 120
    while _count(conn, WAITING_FOR_LOCK) < count:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"migrate exited before waiting for the lock:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{count} migrate processes never waited for the lock")
        time.sleep(0.05)


def test_two_concurrent_migrates_apply_each_migration_once(fresh_database_url):
    with psycopg.connect(fresh_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%(key)s)", {"key": MIGRATE_LOCK_KEY})
        procs = [_migrate(fresh_database_url) for _ in range(2)]
        try:
            _wait_for_waiters(holder, 2, procs)
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
        holder.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": MIGRATE_LOCK_KEY})

        outputs = []
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out
            outputs.append(out)

        rows = holder.execute(
            "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name"
        ).fetchall()

    for out in outputs:
        assert "Waiting for another migrate to finish (server process " in out
        assert "Migration lock acquired." in out
    applied = [out for out in outputs if "Applying accounts.0001_initial... OK" in out]
    idle = [out for out in outputs if "No migrations to apply." in out]
    assert len(applied) == 1, outputs
    assert len(idle) == 1, outputs
    assert "Applying" not in idle[0]
    # Every migration recorded exactly once.
    assert rows
    assert {count for _app, _name, count in rows} == {1}
    assert {"accounts", "core", "analytics", "audit"} <= {app for app, _name, _c in rows}


def test_plan_does_not_wait_for_a_running_migrate(fresh_database_url):
    with psycopg.connect(fresh_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%(key)s)", {"key": MIGRATE_LOCK_KEY})
        proc = _migrate(fresh_database_url, "--plan")
        out, _ = proc.communicate(timeout=300)

    assert proc.returncode == 0, out
    assert "Planned operations:" in out
    assert "Waiting" not in out
