"""The dashboard's session rollup, kept exact by PostgreSQL: core.session_status_hours
(sessions per UTC hour of their start and status, folded) and
core.session_status_changes (+1/-1 not yet folded).

Row triggers on core.codex_sessions append a change for a session's hour and status
when it is inserted, when its status or start time changes (-1 for the old pair, +1 for
the new), and when it is deleted; a TRUNCATE empties both tables. The update trigger's
WHEN clause is checked by PostgreSQL before any function runs, so the gateway's other
updates (a running session's metadata, updated_at) run nothing. Each change is one
appended row, in the writer's own transaction (a rolled-back change counts nothing),
taking no row lock another writer could wait for. The dashboard folds the changes into
the hours (core/selectors.py).

The function is SECURITY DEFINER (owned by the migrator, search_path pinned): the
gateway's role writes core.codex_sessions and needs no privilege on the rollup.

The triggers are ENABLE (not ALWAYS): a session in session_replication_role = replica
(a logical replica applying changes, a data-only restore) skips them, as it should, since
the rollup's own rows are replicated or restored with the rest.

Creating the triggers takes SHARE ROW EXCLUSIVE on core.codex_sessions for a moment
(this migration commits right after). The existing sessions are counted by the next
migration, without holding writes off.

The SQL is fixed text (no values), so plain RunSQL strings are safe here.
"""

from django.db import migrations, models

FUNCTION_SQL = """
CREATE FUNCTION "core"."count_session_statuses"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM "core"."session_status_changes";
        DELETE FROM "core"."session_status_hours";
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO "core"."session_status_changes" (hour, status, change)
        VALUES (date_trunc('hour', OLD.created_at, 'UTC'), OLD.status, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO "core"."session_status_changes" (hour, status, change)
        VALUES (date_trunc('hour', NEW.created_at, 'UTC'), NEW.status, 1);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION "core"."count_session_statuses"() FROM PUBLIC;
"""

TRIGGERS_SQL = """
CREATE TRIGGER "codex_sessions_count_insert" AFTER INSERT ON "core"."codex_sessions"
    FOR EACH ROW EXECUTE FUNCTION "core"."count_session_statuses"();
CREATE TRIGGER "codex_sessions_count_update"
    AFTER UPDATE OF status, created_at ON "core"."codex_sessions"
    FOR EACH ROW WHEN (
        OLD.status IS DISTINCT FROM NEW.status OR OLD.created_at IS DISTINCT FROM NEW.created_at
    )
    EXECUTE FUNCTION "core"."count_session_statuses"();
CREATE TRIGGER "codex_sessions_count_delete" AFTER DELETE ON "core"."codex_sessions"
    FOR EACH ROW EXECUTE FUNCTION "core"."count_session_statuses"();
CREATE TRIGGER "codex_sessions_count_truncate" AFTER TRUNCATE ON "core"."codex_sessions"
    FOR EACH STATEMENT EXECUTE FUNCTION "core"."count_session_statuses"();
"""

DROP_TRIGGERS_SQL = """
DROP TRIGGER IF EXISTS "codex_sessions_count_insert" ON "core"."codex_sessions";
DROP TRIGGER IF EXISTS "codex_sessions_count_update" ON "core"."codex_sessions";
DROP TRIGGER IF EXISTS "codex_sessions_count_delete" ON "core"."codex_sessions";
DROP TRIGGER IF EXISTS "codex_sessions_count_truncate" ON "core"."codex_sessions";
"""


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0007_translatable_names"),
    ]

    operations = [
        migrations.CreateModel(
            name="SessionStatusChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("hour", models.DateTimeField(verbose_name="hour")),
                ("status", models.CharField(max_length=50, verbose_name="status")),
                ("change", models.SmallIntegerField(verbose_name="change")),
            ],
            options={
                "verbose_name": "session count change",
                "verbose_name_plural": "session count changes",
                "db_table": 'core"."session_status_changes',
            },
        ),
        migrations.CreateModel(
            name="SessionStatusHour",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "hour",
                        "status",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "hour",
                    models.DateTimeField(help_text="Start of the hour (UTC).", verbose_name="hour"),
                ),
                ("status", models.CharField(max_length=50, verbose_name="status")),
                ("sessions", models.BigIntegerField(verbose_name="sessions")),
            ],
            options={
                "verbose_name": "hourly session count",
                "verbose_name_plural": "hourly session counts",
                "db_table": 'core"."session_status_hours',
                "ordering": ["-hour", "status"],
            },
        ),
        migrations.RunSQL(
            FUNCTION_SQL, reverse_sql='DROP FUNCTION IF EXISTS "core"."count_session_statuses"()'
        ),
        migrations.RunSQL(TRIGGERS_SQL, reverse_sql=DROP_TRIGGERS_SQL),
    ]
