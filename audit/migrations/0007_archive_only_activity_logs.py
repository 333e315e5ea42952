"""The activity log: a DELETE must be exactly the chain prefix of this transaction's
archive boundary (``0006_archive_boundaries`` explains the checks).

An ``AFTER DELETE`` statement trigger with the deleted rows as the transition table
``archived``, ``ENABLE ALWAYS``. Alone on its table (its lock is a short SHARE ROW
EXCLUSIVE); the append-only guard still refuses every DELETE until
``0008_archive_delete_guard``. The SQL is fixed text.
"""

from django.db import migrations

TABLE = "activity_logs"

TRIGGER_SQL = f"""
CREATE TRIGGER "{TABLE}_archive_only" AFTER DELETE ON "audit"."{TABLE}"
    REFERENCING OLD TABLE AS archived
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."archive_delete_check"();
ALTER TABLE "audit"."{TABLE}" ENABLE ALWAYS TRIGGER "{TABLE}_archive_only";
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_archive_boundaries"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGER_SQL,
            reverse_sql=f'DROP TRIGGER IF EXISTS "{TABLE}_archive_only" ON "audit"."{TABLE}";',
        ),
    ]
