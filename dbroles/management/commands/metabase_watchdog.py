"""Undo what a Metabase SQL-editor session can do to itself (see dbroles/watchdog.py)."""

from __future__ import annotations

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils.translation import gettext

from audit.services import record_activity
from dbroles import metabase, watchdog
from dbroles.management.commands.metabase_access import Command as AccessCommand
from dbroles.metabase import AccessError

AUDIT_ACTION = "metabase_watchdog.{kind}"


class Command(BaseCommand):
    help = (
        "On a schedule (a Cloud Run job, like snapshot_stats): cancel the Metabase role's "
        "statements past its statement timeout, end its sessions idle in a transaction past "
        "the idle timeout, unlink the large objects it owns, reset settings it gave itself "
        "and revoke anything extra; each action goes to the audit trail. Run it as the role "
        "that runs metabase_access (member of pg_signal_backend)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # The same role names and limits as metabase_access, from the same variables.
        access = AccessCommand()
        access.add_arguments(parser)

    def handle(self, *args, **options) -> None:
        for flag in ("dry_run", "revoke", "check", "drop_owned"):
            if options.get(flag):
                raise CommandError(
                    gettext("%(option)s is an option of metabase_access")
                    % {"option": "--" + flag.replace("_", "-")}
                )
        if options.get("reassign_owned_to"):
            raise CommandError(
                gettext("%(option)s is an option of metabase_access")
                % {"option": "--reassign-owned-to"}
            )
        try:
            config = AccessCommand()._config(options)
        except AccessError as exc:
            raise CommandError(str(exc)) from None
        if options["database"] not in connections:
            raise CommandError(
                gettext("unknown database alias %(alias)s") % {"alias": repr(options["database"])}
            )
        django_conn = connections[options["database"]]
        django_conn.ensure_connection()
        conn: psycopg.Connection = django_conn.connection
        if config.login_role not in metabase.read_roles(conn, [config.login_role]):
            self.stdout.write(
                gettext(
                    "role %(role)s does not exist: nothing to watch "
                    "(run manage.py metabase_access first)"
                )
                % {"role": config.login_role}
            )
            return
        try:
            actions = watchdog.run(conn, config)
        except AccessError as exc:
            raise CommandError(str(exc)) from None
        except psycopg.Error as exc:
            raise CommandError(
                gettext("PostgreSQL refused: %(error)s") % {"error": metabase.first_line(exc)}
            ) from None
        for action in actions:
            record_activity(
                action=AUDIT_ACTION.format(kind=action.kind),
                resource_type="database role",
                resource_id=config.login_role,
                object_repr=action.summary[:200],
                details=action.details,
            )
            line = f"{action.kind}: {action.summary}"
            self.stdout.write(self.style.ERROR(line) if action.kind == "error" else line)
        if not actions:
            self.stdout.write(
                gettext("metabase_watchdog: nothing to do for %(role)s.")
                % {"role": config.login_role}
            )
        if any(a.kind == "error" for a in actions):
            raise CommandError(gettext("the watchdog could not take every action (see above)"))
