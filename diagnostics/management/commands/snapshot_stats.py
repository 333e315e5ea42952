"""``manage.py snapshot_stats``: record database statistics history (for a scheduler).

Idempotent: a database whose last snapshot is younger than the minimum interval is
skipped, and concurrent runs never capture the same database twice. pg_stat_statements
is never reset; deltas are stored.
"""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from diagnostics import snapshots, targets


class Command(BaseCommand):
    help = (
        "Store a snapshot of database size, table sizes, connection counts and "
        "pg_stat_statements deltas for each diagnostics database, and prune old ones."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            action="append",
            dest="aliases",
            metavar="ALIAS",
            help="database alias to capture (repeatable; default: every diagnostics database)",
        )
        parser.add_argument(
            "--min-interval",
            type=int,
            default=None,
            metavar="SECONDS",
            help="skip a database whose last snapshot is younger than this "
            "(default: DIAGNOSTICS_SNAPSHOT_MIN_INTERVAL_SECONDS)",
        )
        parser.add_argument(
            "--retention-days",
            type=int,
            default=None,
            metavar="DAYS",
            help="delete snapshots older than this (default: DIAGNOSTICS_SNAPSHOT_RETENTION_DAYS)",
        )
        parser.add_argument(
            "--top-tables", type=int, default=50, help="largest tables to record (default 50)"
        )
        parser.add_argument(
            "--top-queries",
            type=int,
            default=200,
            help="busiest statements of the interval to record (default 200)",
        )

    def handle(self, *args, **options):
        known = targets.aliases()
        aliases = options["aliases"] or known
        unknown = [a for a in aliases if a not in known]
        if unknown:
            raise CommandError(
                gettext("unknown database alias %(unknown)s (known: %(known)s)")
                % {"unknown": ", ".join(unknown), "known": ", ".join(known)}
            )
        min_interval = options["min_interval"]
        if min_interval is None:
            min_interval = settings.DIAGNOSTICS_SNAPSHOT_MIN_INTERVAL_SECONDS
        retention = options["retention_days"]
        if retention is None:
            retention = settings.DIAGNOSTICS_SNAPSHOT_RETENTION_DAYS
        if min_interval < 0 or retention < 1:
            raise CommandError(gettext("--min-interval must be >= 0 and --retention-days >= 1"))
        if options["top_tables"] < 0 or options["top_queries"] < 0:
            raise CommandError(gettext("--top-tables and --top-queries must be >= 0"))

        failed = []
        for alias in aliases:
            outcome = snapshots.take(
                alias,
                min_interval=dt.timedelta(seconds=min_interval),
                top_tables=options["top_tables"],
                top_queries=options["top_queries"],
            )
            where = f"{alias}/{outcome.database or '?'}"
            if outcome.status in {"created", "skipped"}:
                self.stdout.write(f"{where}: {outcome.message}")
            else:
                failed.append(alias)
                self.stderr.write(f"{where}: {outcome.message}")
        pruned = snapshots.prune(retention=dt.timedelta(days=retention))
        self.stdout.write(
            gettext("pruned %(pruned)s snapshots older than %(days)s days")
            % {"pruned": pruned, "days": retention}
        )
        if failed:
            raise CommandError(
                gettext("could not capture %(aliases)s") % {"aliases": ", ".join(failed)}
            )
