"""``lint_migrations``: every project migration against squawk and the Django-level
rules of portal/db/lint.py. One line per violation with the rule and the fix; exit 1
when there is any. Exemptions (``LINT_EXEMPT`` in the migration) are listed with -v 2.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from portal.db import lint


class Command(BaseCommand):
    help = "Lint the project's migrations (squawk on sqlmigrate + Django-level rules)."

    def add_arguments(self, parser):
        parser.add_argument("apps", nargs="*", help="App labels (default: the project's apps)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--no-squawk", action="store_true", help="Only the Django-level rules.")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        apps = options["apps"] or lint.PROJECT_APPS
        try:
            violations, exempted = lint.lint(connection, apps, use_squawk=not options["no_squawk"])
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 2:
            for v in exempted:
                self.stdout.write(f"exempt: {v.line()}")
        for v in violations:
            self.stdout.write(v.line())
        if violations:
            self.stdout.write(
                f"{len(violations)} migration rule(s) broken. Fix them, or add a reviewed "
                'exemption to the migration: LINT_EXEMPT = {"<rule>": "<why it is safe>"}.'
            )
            raise SystemExit(1)
        self.stdout.write(f"Migrations lint clean ({len(exempted)} reviewed exemption(s)).")
