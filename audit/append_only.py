"""The append-only guard of the audit tables: names shared by the migration and tests.

``audit/migrations/0002_append_only.py`` creates, on each table, one statement-level
trigger refusing UPDATE and DELETE and one refusing TRUNCATE, all
``ENABLE ALWAYS`` (they fire even with ``session_replication_role = replica``).
``0006_archive_boundaries`` gives the archive boundaries the same two, and
``0008_archive_delete_guard`` lets through only an archive's DELETE (``audit/archive.py``).
"""

FUNCTION = '"audit"."refuse_audit_rewrite"'

#: table (as in ``Meta.db_table``) -> (UPDATE/DELETE trigger, TRUNCATE trigger)
TRIGGERS = {
    'audit"."activity_logs': ("activity_logs_no_rewrite", "activity_logs_no_truncate"),
    'audit"."security_events': ("security_events_no_rewrite", "security_events_no_truncate"),
    'audit"."archive_boundaries': (
        "archive_boundaries_no_rewrite",
        "archive_boundaries_no_truncate",
    ),
}

#: table -> the archive's triggers (``0006``-``0008``): on each chained table the
#: AFTER DELETE check of an archive's rows, on the boundaries their BEFORE INSERT check
ARCHIVE_TRIGGERS = {
    "activity_logs": "activity_logs_archive_only",
    "security_events": "security_events_archive_only",
    "archive_boundaries": "archive_boundaries_check",
}
