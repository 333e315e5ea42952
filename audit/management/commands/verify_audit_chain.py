"""``verify_audit_chain``: check the audit tables' hash chains, optionally anchor them.

    manage.py verify_audit_chain            # verify; exit 1 naming the first broken link
    manage.py verify_audit_chain --anchor   # verify, then write the heads to storage
    manage.py verify_audit_chain --archives # also read and verify every archived object

Each chain starts after its latest archive boundary (``archive_audit``): the first row
left must follow it, and consecutive boundaries must link. ``--archives`` reads every
archived object of the boundaries (SHA-256, every hash, the ends) and names the first
bad one.

Every run appends one activity entry (action ``verify_audit_chain``, resource type
``audit.chain``) with the result; the Audit pages of the admin show the latest.
Schedule it (Cloud Scheduler -> a Cloud Run job) with ``--anchor``: the anchors are
what catch a rewrite of a whole table and its chain (docs/audit-and-security.md).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _

from audit import chain
from audit.services import record_activity


class Command(BaseCommand):
    help = (
        "Verify the audit hash chains (exit 1 at the first broken link); "
        "--anchor writes the heads to storage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--anchor",
            action="store_true",
            help="after a successful verification, write the chain heads to the default storage",
        )
        parser.add_argument(
            "--no-anchor-check",
            action="store_true",
            help="do not compare with the latest anchor (chains only)",
        )
        parser.add_argument(
            "--archives",
            action="store_true",
            help="also read every archived object from storage and verify it",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        result = chain.verify(
            using=using, check_anchor=not options["no_anchor_check"], archives=options["archives"]
        )
        written = None
        if result.ok and options["anchor"]:
            written = chain.write_anchor(result, using=using)
        details = {**result.as_details(), "anchor_written": written}
        with transaction.atomic(using=using):
            record_activity(
                action=chain.VERIFY_ACTION,
                resource_type=chain.VERIFICATION,
                object_repr="audit chain verified" if result.ok else "audit chain BROKEN",
                details=details,
            )
        if not result.ok:
            raise CommandError(
                gettext("audit chain broken: %(problem)s") % {"problem": result.problem},
                returncode=1,
            )
        for table, head in result.heads.items():
            rows = result.rows.get(table, 0)
            self.stdout.write(
                ngettext(
                    "audit.%(table)s: %(rows)s row, head seq %(seq)s %(hash)s…",
                    "audit.%(table)s: %(rows)s rows, head seq %(seq)s %(hash)s…",
                    rows,
                )
                % {"table": table, "rows": rows, "seq": head.seq, "hash": head.hash[:16]}
            )
        for table, boundary in result.boundaries.items():
            self.stdout.write(
                _("audit.%(table)s: starts after the archive boundary at seq %(seq)s")
                % {"table": table, "seq": boundary.seq}
            )
        if result.archives is not None:
            self.stdout.write(
                ngettext(
                    "%(count)s archived object verified",
                    "%(count)s archived objects verified",
                    result.archives,
                )
                % {"count": result.archives}
            )
        if result.anchor:
            self.stdout.write(gettext("matches anchor %(anchor)s") % {"anchor": result.anchor})
        if written:
            self.stdout.write(gettext("anchored to %(path)s") % {"path": written})
