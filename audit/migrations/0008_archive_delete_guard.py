"""The security events get the archive check of ``0007``; then the append-only guard
lets through the one DELETE an archive makes (``0006_archive_boundaries`` explains).

The guard (``audit.refuse_audit_rewrite``, the statement-level trigger function of
``0002_append_only`` on both audit tables and on the boundaries) keeps refusing every
UPDATE and TRUNCATE, and every DELETE except, on ``activity_logs`` or
``security_events``, one by the table's owner (``current_user``; the function is not
``SECURITY DEFINER``) in a transaction that has inserted a boundary of that table. The
``AFTER DELETE`` trigger then checks which rows went. Replacing the function's body
takes no table lock. The SQL is fixed text.
"""

from django.db import migrations

TABLE = "security_events"

TRIGGER_SQL = f"""
CREATE TRIGGER "{TABLE}_archive_only" AFTER DELETE ON "audit"."{TABLE}"
    REFERENCING OLD TABLE AS archived
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."archive_delete_check"();
ALTER TABLE "audit"."{TABLE}" ENABLE ALWAYS TRIGGER "{TABLE}_archive_only";
"""

GUARD_SQL = """
CREATE OR REPLACE FUNCTION "audit"."refuse_audit_rewrite"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_SCHEMA = 'audit'
        AND TG_TABLE_NAME IN ('activity_logs', 'security_events')
        AND (SELECT relowner FROM pg_catalog.pg_class WHERE oid = TG_RELID)
            = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
        AND EXISTS (
            SELECT 1 FROM "audit"."archive_boundaries" b
            WHERE b.table_name = TG_TABLE_NAME
              AND b.archived_in = pg_catalog.pg_current_xact_id()::text::bigint)
    THEN
        RETURN NULL;  -- the archive's DELETE: the AFTER DELETE trigger checks its rows
    END IF;
    RAISE EXCEPTION 'audit.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries are evidence; they can be added, never changed or removed.';
END
$$;
"""

# 0002's body
GUARD_REVERSE_SQL = """
CREATE OR REPLACE FUNCTION "audit"."refuse_audit_rewrite"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries are evidence; they can be added, never changed or removed.';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0007_archive_only_activity_logs"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGER_SQL,
            reverse_sql=f'DROP TRIGGER IF EXISTS "{TABLE}_archive_only" ON "audit"."{TABLE}";',
        ),
        migrations.RunSQL(GUARD_SQL, reverse_sql=GUARD_REVERSE_SQL),
    ]
