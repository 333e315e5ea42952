"""``db_roles``: converge the database roles to ``dbroles/declaration.py``.

    manage.py db_roles              # apply: one transaction, under an advisory lock
    manage.py db_roles --check      # exit 1 listing what differs; changes nothing
    manage.py db_roles --dry-run    # the psql script a DBA would run; changes nothing
    manage.py db_roles --markdown   # the roles x schemas x privileges table of the docs
    manage.py db_roles --metabase   # the Metabase roles too (dbroles/metabase.py)

Run it as the instance's administrator (a superuser locally; on Cloud SQL a member of
``cloudsqlsuperuser`` such as ``postgres``). Passwords come from the environment
(``DB_MIGRATOR_PASSWORD``, ``DB_APP_PASSWORD``, ``METABASE_DB_PASSWORD``), are sent as
SCRAM verifiers and never printed.
"""

from __future__ import annotations

import os

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.translation import gettext, ngettext

from dbroles import declaration, metabase
from dbroles.declaration_plan import LOCK_KEY, plan_roles
from dbroles.metabase import AccessError, PasswordState


class Command(BaseCommand):
    help = (
        "Create or update, idempotently, the project's database roles (migrator, "
        "application, monitoring; --metabase: Metabase's) from dbroles/declaration.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="exit 1 if anything differs")
        mode.add_argument(
            "--dry-run", action="store_true", help="print the SQL as a psql script; change nothing"
        )
        mode.add_argument(
            "--markdown", action="store_true", help="print the roles x schemas table of the docs"
        )
        parser.add_argument(
            "--metabase", action="store_true", help="also converge the Metabase roles"
        )
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="take over declared roles that exist but were not created by db_roles",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, **options) -> None:
        if options["markdown"]:
            self.stdout.write(declaration.markdown(), ending="")
            return
        if options["database"] not in connections:
            raise CommandError(
                gettext("unknown database alias %(alias)s") % {"alias": repr(options["database"])}
            )
        django_conn = connections[options["database"]]
        django_conn.ensure_connection()
        conn: psycopg.Connection = django_conn.connection
        try:
            with transaction.atomic(using=django_conn.alias):
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                self._run(conn, options)
        except AccessError as exc:
            raise CommandError(str(exc)) from None
        except psycopg.Error as exc:
            raise CommandError(
                gettext("PostgreSQL refused: %(error)s") % {"error": metabase.first_line(exc)}
            ) from None

    def _metabase_plan(self, conn, *, dry_run: bool) -> metabase.Plan:
        password = os.environ.get(metabase.PASSWORD_ENV) or None
        if password is None and not dry_run:
            raise AccessError(
                gettext("%(variable)s is not set: the Metabase role's password")
                % {"variable": metabase.PASSWORD_ENV}
            )
        config = metabase.AccessConfig(migration_role=declaration.role("migrator").name)
        state = None
        if password is not None:
            exists = metabase.read_roles(conn, [config.login_role])
            state = (
                metabase.probe_password(metabase.login_params(conn), config.login_role, password)
                if exists
                else PasswordState(needs_setting=True, reason="new role")
            )
        return metabase.plan_grant(
            conn, config, password=None if dry_run else password, password_state=state
        )

    def _run(self, conn, options) -> None:
        check, dry_run = options["check"], options["dry_run"]
        plan = plan_roles(conn, adopt=options["adopt"], dry_run=dry_run or check)
        if dry_run or check:
            plans = [plan]
            if options["metabase"]:
                if plan.changes:
                    plan.notes.append(
                        gettext("the Metabase roles are planned once the roles above exist")
                    )
                else:
                    plans.append(self._metabase_plan(conn, dry_run=True))
            if check:
                todo = [c for p in plans for c in p.changes]
                if todo:
                    for change in todo:
                        self.stdout.write(f"  - {change.summary}")
                    raise CommandError(
                        ngettext(
                            "%(count)s change needed in database %(database)s",
                            "%(count)s changes needed in database %(database)s",
                            len(todo),
                        )
                        % {"count": len(todo), "database": plan.database},
                        returncode=1,
                    )
                self.stdout.write(
                    gettext("Database %(database)s: roles as declared.")
                    % {"database": plan.database}
                )
                return
            for i, p in enumerate(plans):
                header = [
                    ngettext(
                        "db_roles --dry-run: %(count)s change for database %(database)s; "
                        "nothing was run.",
                        "db_roles --dry-run: %(count)s changes for database %(database)s; "
                        "nothing was run.",
                        len(p.changes),
                    )
                    % {"count": len(p.changes), "database": p.database}
                    if i == 0
                    else gettext("Metabase roles:"),
                    gettext("Run with %(command)s")
                    % {
                        "command": "psql -v ON_ERROR_STOP=1 -v migrator_password=... "
                        "-v application_password=... -f roles.sql"
                    },
                ]
                self.stdout.write(metabase.render(p, conn, header=header), ending="")
            return
        metabase.apply(conn, plan)
        applied = list(plan.changes)
        if options["metabase"]:
            mb = self._metabase_plan(conn, dry_run=False)
            metabase.apply(conn, mb)
            applied += mb.changes
        leftover = plan_roles(conn, adopt=options["adopt"], dry_run=True, check_passwords=False)
        if leftover.changes:
            # Raising rolls the whole transaction back: never a half-applied change.
            raise AccessError(
                gettext(
                    "the roles did not reach the declared state (nothing was changed); "
                    "still to do: %(change)s"
                )
                % {"change": leftover.changes[0].summary}
            )
        if not applied:
            self.stdout.write(
                gettext("Database %(database)s: nothing to change.") % {"database": plan.database}
            )
            return
        self.stdout.write(
            ngettext(
                "Database %(database)s: %(count)s change",
                "Database %(database)s: %(count)s changes",
                len(applied),
            )
            % {"database": plan.database, "count": len(applied)}
        )
        for change in applied:
            self.stdout.write(f"  - {change.summary}")
