"""The append-only guard of the audit tables: names shared by the migration and tests.

``audit/migrations/0002_append_only.py`` creates, on each table, one statement-level
trigger refusing UPDATE and DELETE and one refusing TRUNCATE, all
``ENABLE ALWAYS`` (they fire even with ``session_replication_role = replica``).
"""

FUNCTION = '"audit"."refuse_audit_rewrite"'

#: table (as in ``Meta.db_table``) -> (UPDATE/DELETE trigger, TRUNCATE trigger)
TRIGGERS = {
    'audit"."activity_logs': ("activity_logs_no_rewrite", "activity_logs_no_truncate"),
    'audit"."security_events': ("security_events_no_rewrite", "security_events_no_truncate"),
}
