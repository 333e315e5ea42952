"""The audit tables become append-only: triggers refuse UPDATE, DELETE and TRUNCATE.

Statement-level triggers, so even a statement that matches no row is refused, and
``ENABLE ALWAYS``, so a session in ``session_replication_role = replica`` (what
restores and replication use to skip triggers) does not bypass them either. Only the
table owner can disable them (``ALTER TABLE ... DISABLE TRIGGER``): in production the
application role is not the owner and holds only INSERT and SELECT (docs/audit-and-security.md).
The SQL is fixed text (no values), so plain RunSQL strings are safe here.
"""

from django.db import migrations

FUNCTION_SQL = """
CREATE FUNCTION "audit"."refuse_audit_rewrite"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries are evidence; they can be added, never changed or removed.';
END
$$;
"""

TABLES = {
    "activity_logs": ("activity_logs_no_rewrite", "activity_logs_no_truncate"),
    "security_events": ("security_events_no_rewrite", "security_events_no_truncate"),
}


def triggers_sql(table: str, rewrite: str, truncate: str) -> str:
    return f"""
CREATE TRIGGER "{rewrite}" BEFORE UPDATE OR DELETE ON "audit"."{table}"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_audit_rewrite"();
CREATE TRIGGER "{truncate}" BEFORE TRUNCATE ON "audit"."{table}"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_audit_rewrite"();
ALTER TABLE "audit"."{table}" ENABLE ALWAYS TRIGGER "{rewrite}";
ALTER TABLE "audit"."{table}" ENABLE ALWAYS TRIGGER "{truncate}";
"""


def drop_sql(table: str, rewrite: str, truncate: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS "{rewrite}" ON "audit"."{table}";
DROP TRIGGER IF EXISTS "{truncate}" ON "audit"."{table}";
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION_SQL, reverse_sql='DROP FUNCTION IF EXISTS "audit"."refuse_audit_rewrite"()'
        ),
        *(
            migrations.RunSQL(triggers_sql(t, *names), reverse_sql=drop_sql(t, *names))
            for t, names in TABLES.items()
        ),
    ]
