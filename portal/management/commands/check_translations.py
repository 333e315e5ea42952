"""Fail when a shown string is not marked, or a catalog is stale, untranslated or fuzzy.

``--update`` runs makemessages in place for every app instead (the first step of a
translation pass: docs/architecture.md, "Translations").
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal import i18n_check


class Command(BaseCommand):
    help = "Checks that every shown string is marked for translation and translated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--update",
            action="store_true",
            help="Update the committed .po files from the sources (makemessages) and stop.",
        )

    def handle(self, *args: Any, update: bool = False, **options: Any) -> None:
        if update:
            for app in i18n_check.APPS:
                for language in i18n_check.LANGUAGES:
                    (i18n_check.ROOT / app / "locale").mkdir(exist_ok=True)
                    i18n_check.run_makemessages(i18n_check.ROOT / app, language)
                    self.stdout.write(str(i18n_check.catalog_path(app, language)))
            return
        problems = [str(f) for f in i18n_check.check_templates()]
        problems += [str(f) for f in i18n_check.check_python()]
        problems += i18n_check.check_catalogs()
        if problems:
            raise CommandError(f"{len(problems)} translation problem(s):\n" + "\n".join(problems))
        self.stdout.write("translations: every shown string marked, every entry translated")
