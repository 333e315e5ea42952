"""``archive_audit``: move audit rows past their retention to storage, chain intact.

    manage.py archive_audit                       # rows older than AUDIT_RETENTION_DAYS
    manage.py archive_audit --before 2026-01-01   # rows created before that day (UTC)
    manage.py archive_audit --dry-run             # what would be archived; changes nothing
    manage.py archive_audit --table security      # one table (activity, security, both)

Runs as the migrator (the audit tables' owner): the database refuses anyone else
(``audit/archive.py``, docs/audit-and-security.md). Exit 0 when archived or when there
is nothing to archive; 1 with a one-line reason otherwise, with nothing deleted.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext as _

from audit import archive

TABLES = {
    "activity": ["activity_logs"],
    "security": ["security_events"],
    "both": ["activity_logs", "security_events"],
}


class Command(BaseCommand):
    help = (
        "Archive audit rows older than the retention (or --before) to storage as gzip "
        "JSON lines, verify the object, then remove exactly those rows (as the migrator)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--before",
            metavar="YYYY-MM-DD",
            help="archive rows created before this day (UTC) instead of AUDIT_RETENTION_DAYS",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check and show what would be archived; write and delete nothing",
        )
        parser.add_argument("--table", choices=sorted(TABLES), default="both")
        parser.add_argument(
            "--max-rows",
            type=int,
            default=None,
            help="archive at most this many rows per table in this run (the oldest)",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["max_rows"] is not None and options["max_rows"] < 1:
            raise CommandError(_("--max-rows must be at least 1"))
        try:
            if options["before"]:
                before = archive.parse_before(options["before"])
            else:
                cutoff = archive.retention_cutoff()
                if cutoff is None:
                    self.stdout.write(
                        _(
                            "nothing to archive: the audit retention is to keep everything "
                            "(AUDIT_RETENTION_DAYS is not set; --before YYYY-MM-DD archives "
                            "older rows anyway)"
                        )
                    )
                    return
                before = cutoff
            report = archive.run(
                TABLES[options["table"]],
                before,
                using=options["database"],
                dry_run=options["dry_run"],
                max_rows=options["max_rows"],
            )
        except archive.ArchiveError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        for table in report.nothing:
            self.stdout.write(
                _("audit.%(table)s: nothing to archive (no row older than %(before)s)")
                % {"table": table, "before": report.before.isoformat()}
            )
        for done in report.archived:
            values = {
                "table": done.plan.table,
                "first": done.plan.first_seq,
                "last": done.plan.last_seq,
                "rows": done.plan.rows,
                "bytes": done.size,
                "name": done.name,
            }
            if report.dry_run:
                line = _(
                    "audit.%(table)s: would archive seq %(first)s to %(last)s (%(rows)s rows,"
                    " %(bytes)s bytes compressed); dry run, nothing written or deleted"
                )
            else:
                line = _(
                    "audit.%(table)s: archived seq %(first)s to %(last)s (%(rows)s rows,"
                    " %(bytes)s bytes) to %(name)s, verified, and removed"
                )
            self.stdout.write(line % values)
