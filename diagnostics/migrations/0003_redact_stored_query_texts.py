"""Re-redact the statement texts already stored in analytics.query_stat_snapshots.

Rows written before statement texts were redacted with PostgreSQL's grammar may hold
credentials the old pattern missed (``PASSWORD E'...'``, ``$$...$$``, ``U&'...'``,
connection strings), and Metabase reads this table. Redaction is idempotent, so rows
that are already clean are left untouched; only changed rows are written. Not
reversible in any meaningful way (the secrets are gone), so the reverse is a no-op.
"""

from django.db import migrations

BATCH = 1000


def redact_stored_texts(apps, schema_editor):
    from diagnostics.redaction import redact_sql

    QueryStatSnapshot = apps.get_model("diagnostics", "QueryStatSnapshot")
    rows = QueryStatSnapshot.objects.using(schema_editor.connection.alias)
    changed = []
    for row in rows.order_by("id").only("id", "query").iterator(chunk_size=BATCH):
        redacted = redact_sql(row.query) or ""
        if redacted != row.query:
            row.query = redacted
            changed.append(row)
        if len(changed) >= BATCH:
            rows.bulk_update(changed, ["query"])
            changed = []
    if changed:
        rows.bulk_update(changed, ["query"])


class Migration(migrations.Migration):
    dependencies = [("diagnostics", "0002_explain_analyze_permission")]

    operations = [
        migrations.RunPython(redact_stored_texts, migrations.RunPython.noop, elidable=True),
    ]
