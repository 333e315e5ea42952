"""Migration executor that retries an atomic migration when a lock was not granted.

Inside a transaction a statement that hits ``lock_timeout`` aborts the transaction, so
the schema editor cannot retry that statement alone (it retries statements of
non-atomic migrations itself). Here the whole migration is rolled back, the
migration's project state restored, and the migration tried again after a backoff;
when the retries run out, the job fails with the report of who held the lock
(portal/db/locks.py). ``migrate`` uses this executor.
"""

from __future__ import annotations

import time

from django.db.migrations.executor import MigrationExecutor

from . import locks


class LockSafeExecutor(MigrationExecutor):
    def apply_migration(self, state, migration, fake=False, fake_initial=False):
        policy = locks.current_policy()
        if fake or not policy.enabled or not migration.atomic:
            return super().apply_migration(state, migration, fake, fake_initial)
        label = f"{migration.app_label}.{migration.name}"
        attempt = 0
        while True:
            attempt += 1
            # Operations mutate the state they are given; a retry starts from a copy.
            try:
                return super().apply_migration(state.clone(), migration, fake, fake_initial)
            except locks.LockTimeout as timeout:
                if attempt > policy.retries:
                    raise locks.MigrationBlocked(
                        locks.report(label, timeout, policy, attempt, atomic=True)
                    ) from timeout
                locks.end_blockers(self.connection, policy, timeout, label)
                delay = policy.delay(attempt)
                policy.note(
                    f"\n  {label}: lock not granted in {policy.lock_timeout:g} s "
                    f"({'; '.join(timeout.snapshot.waiting_for) if timeout.snapshot else '?'}),"
                    f" rolled back; retry {attempt} of {policy.retries} in {delay:g} s"
                )
                time.sleep(delay)
