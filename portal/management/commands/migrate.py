"""``migrate`` that holds a PostgreSQL advisory lock while it runs.

In production ``migrate`` runs as a Cloud Run job; a retried task, two deploys at once
or a job started by hand while another runs must not apply the same migration twice
(the second run would fail half-way on "relation already exists", or worse, succeed
at a data migration twice). Every run takes the same session-level advisory lock
before looking at the migration state, so a second run waits, then finds the work done.

Advisory locks are per database, are released when the session ends (a crashed run
cannot leave the lock behind), and need no table. The lock is taken on Django's own
connection, the one the migrations then use. It needs a direct connection or a session
pooler: a transaction-mode pooler would hand the session to someone else.

Every migration also runs lock-safe (portal/db/locks.py, portal/db/executor.py): short
lock waits, retries with backoff, and when they run out a report of who held the lock.
``--cancel-blockers`` / ``--terminate-blockers`` end the blockers (audited) before a
retry instead of only waiting for them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.core.management.base import OutputWrapper
from django.core.management.commands import migrate
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.translation import gettext

from portal.db import locks
from portal.db.executor import LockSafeExecutor

# Any bigint works as long as every migrate of this project uses the same one:
# the ASCII bytes of "portalmg".
MIGRATE_LOCK_KEY = int.from_bytes(b"portalmg", "big")

TRY_LOCK = "SELECT pg_try_advisory_lock(%(key)s)"
# How often a waiting run tries again. It polls with pg_try_advisory_lock instead of
# blocking in pg_advisory_lock: a statement that waits keeps a transaction open, and
# the running migrate's CREATE INDEX CONCURRENTLY waits for every open transaction, so
# a blocking wait would deadlock with it.
POLL_SECONDS = 0.5
UNLOCK = "SELECT pg_advisory_unlock(%(key)s)"
# pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low 32 bits),
# objsubid = 1.
LOCK_HOLDER = """
SELECT l.pid
  FROM pg_locks AS l
 WHERE l.locktype = 'advisory'
   AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = %(high)s AND l.objid = %(low)s AND l.objsubid = 1
"""


def _lock_holder(connection: BaseDatabaseWrapper, key: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(LOCK_HOLDER, {"high": key >> 32, "low": key & 0xFFFFFFFF})
        row = cursor.fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def advisory_lock(
    connection: BaseDatabaseWrapper, key: int, stdout: OutputWrapper | None = None
) -> Iterator[None]:
    """Hold the session-level advisory lock ``key``, waiting for it if another has it."""
    with connection.cursor() as cursor:
        cursor.execute(TRY_LOCK, {"key": key})
        acquired = cursor.fetchone()[0]
        if not acquired:
            if stdout is not None:
                holder = _lock_holder(connection, key)
                stdout.write(
                    gettext("Waiting for another migrate to finish (server process %(pid)s)...")
                    % {"pid": holder}
                    if holder
                    else gettext("Waiting for another migrate to finish...")
                )
            while not acquired:
                time.sleep(POLL_SECONDS)
                cursor.execute(TRY_LOCK, {"key": key})
                acquired = cursor.fetchone()[0]
            if stdout is not None:
                stdout.write(gettext("Migration lock acquired."))
    try:
        yield
    finally:
        # If the connection died the server has already released the lock with it.
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute(UNLOCK, {"key": key})


class Command(migrate.Command):
    help = (
        migrate.Command.help
        + " On PostgreSQL, concurrent runs are serialised by an advisory lock: a second"
        " run waits for the first, then applies whatever is still unapplied."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--cancel-blockers",
            action="store_const",
            const="cancel",
            dest="blocker_action",
            help="Before each retry, cancel the running query of each session that holds "
            "the lock a migration waits for (audited). Does not help against an idle "
            "transaction: that needs --terminate-blockers.",
        )
        group.add_argument(
            "--terminate-blockers",
            action="store_const",
            const="terminate",
            dest="blocker_action",
            help="Before each retry, terminate each session that holds the lock a "
            "migration waits for (audited).",
        )

    def handle(self, *args: Any, **options: Any) -> str | None:
        connection = connections[options["database"]]
        read_only = options["plan"] or options["check_unapplied"]
        if connection.vendor != "postgresql" or read_only:
            return super().handle(*args, **options)
        verbose = options["verbosity"] >= 1
        policy = locks.with_overrides(
            blocker_action=options.get("blocker_action"),
            say=self.stdout.write if verbose else None,
        )
        with (
            locks.using_policy(policy),
            _executor(LockSafeExecutor),
            advisory_lock(connection, MIGRATE_LOCK_KEY, self.stdout if verbose else None),
        ):
            return super().handle(*args, **options)


@contextlib.contextmanager
def _executor(executor_class: type) -> Iterator[None]:
    """Django's migrate builds its executor from a module global and has no hook for
    another class: point the global at ours for the duration of this command."""
    namespace = vars(migrate)
    original = namespace["MigrationExecutor"]
    namespace["MigrationExecutor"] = executor_class
    try:
        yield
    finally:
        namespace["MigrationExecutor"] = original
