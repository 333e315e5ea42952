"""``schema_drift``: does the live database match what the migrations declare?

Compares the app schemas' catalog with the migrations (portal/db/drift.py): unapplied
migrations, tables, columns (type, null, default), indexes (full definition),
constraints, views and triggers, and names objects nobody declared. One line per
difference; exit status 1 when there is any, so the migrate job fails loudly.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from portal.db import drift


class Command(BaseCommand):
    help = (
        "Compare the app schemas with the state the migrations declare; "
        "exit 1 on any difference (one line each, or --json)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--json", action="store_true", help="A JSON list of differences.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["database"] not in connections:
            raise CommandError(f"unknown database alias: {options['database']}")
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("schema_drift needs PostgreSQL")
        differences = drift.compare(connection)
        if options["json"]:
            self.stdout.write(json.dumps([d.as_dict() for d in differences], indent=2))
        else:
            for difference in differences:
                self.stdout.write(difference.line())
            if not differences:
                self.stdout.write("No drift: the database matches the migrations.")
        if differences:
            raise SystemExit(1)
