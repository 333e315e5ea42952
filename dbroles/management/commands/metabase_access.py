"""Create or update Metabase's read-only roles and grants (see dbroles/metabase.py)."""

from __future__ import annotations

import os

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.translation import gettext, ngettext

from dbroles import metabase
from dbroles.check import FAIL, catalog_findings, failed, run_checks
from dbroles.metabase import PASSWORD_ENV, AccessConfig, AccessError, PasswordState


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


class Command(BaseCommand):
    help = (
        "Create or update, idempotently, the NOLOGIN group role holding Metabase's read-only "
        "grants and the LOGIN role Metabase uses (password from the environment variable "
        f"{PASSWORD_ENV}). --dry-run prints the SQL, --revoke removes it all, --check logs "
        "in as the Metabase role and tries what it may and may not do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print the SQL (a psql script, password as :'metabase_password'); change "
            "nothing (with --revoke: the SQL that would revoke)",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--revoke",
            action="store_true",
            help="revoke every privilege of both roles in this database and drop them",
        )
        mode.add_argument(
            "--check",
            action="store_true",
            help=f"log in as the login role with {PASSWORD_ENV} and report what it can and "
            "cannot do; exit 1 if anything is wrong",
        )
        parser.add_argument(
            "--group-role",
            default=_env("METABASE_GROUP_ROLE", metabase.DEFAULT_GROUP_ROLE),
            help="NOLOGIN role holding the grants (env METABASE_GROUP_ROLE, default "
            f"{metabase.DEFAULT_GROUP_ROLE})",
        )
        parser.add_argument(
            "--login-role",
            default=_env("METABASE_DB_USER", metabase.DEFAULT_LOGIN_ROLE),
            help="LOGIN role Metabase connects as (env METABASE_DB_USER, default "
            f"{metabase.DEFAULT_LOGIN_ROLE})",
        )
        parser.add_argument(
            "--migration-role",
            default=_env("METABASE_MIGRATION_ROLE", ""),
            help="role whose future tables Metabase may read: the one that runs migrations "
            "(env METABASE_MIGRATION_ROLE, default: the current user of the connection)",
        )
        parser.add_argument(
            "--connection-limit",
            default=_env("METABASE_CONNECTION_LIMIT", str(metabase.DEFAULT_CONNECTION_LIMIT)),
            help="CONNECTION LIMIT of the login role (env METABASE_CONNECTION_LIMIT, default "
            f"{metabase.DEFAULT_CONNECTION_LIMIT})",
        )
        parser.add_argument(
            "--statement-timeout",
            default=_env("METABASE_STATEMENT_TIMEOUT", metabase.DEFAULT_STATEMENT_TIMEOUT),
            help="statement_timeout of the login role, e.g. 60s, 5min (env "
            f"METABASE_STATEMENT_TIMEOUT, default {metabase.DEFAULT_STATEMENT_TIMEOUT})",
        )
        parser.add_argument(
            "--idle-in-transaction-timeout",
            default=_env(
                "METABASE_IDLE_IN_TRANSACTION_TIMEOUT",
                metabase.DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
            ),
            help="idle_in_transaction_session_timeout of the login role (env "
            "METABASE_IDLE_IN_TRANSACTION_TIMEOUT, default "
            f"{metabase.DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT})",
        )
        owned = parser.add_mutually_exclusive_group()
        owned.add_argument(
            "--drop-owned",
            action="store_true",
            help="drop what the two roles own in this database (large objects, tables "
            "someone gave them) before converging; without it, ownership is only reported",
        )
        owned.add_argument(
            "--reassign-owned-to",
            metavar="ROLE",
            default=None,
            help="give what the two roles own in this database to ROLE before converging",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Django database alias (default: default)",
        )

    def handle(self, *args, **options) -> None:
        try:
            config = self._config(options)
        except AccessError as exc:
            raise CommandError(str(exc)) from None
        if options["dry_run"] and options["check"]:
            raise CommandError(gettext("--check runs no SQL to print; use it without --dry-run"))
        if options["database"] not in connections:
            raise CommandError(
                gettext("unknown database alias %(alias)s") % {"alias": repr(options["database"])}
            )
        password = os.environ.get(PASSWORD_ENV) or None
        needs_password = not (options["dry_run"] or options["revoke"])
        if needs_password and password is None:
            raise CommandError(
                gettext(
                    "%(variable)s is not set: put the Metabase role's password in the "
                    "environment (never on the command line)"
                )
                % {"variable": PASSWORD_ENV}
            )

        django_conn = connections[options["database"]]
        django_conn.ensure_connection()
        conn: psycopg.Connection = django_conn.connection
        try:
            if options["check"]:
                # --check excludes --dry-run and --revoke, so needs_password held above.
                assert password is not None
                self._check(conn, config, password)
                return
            # Two runs at once would race on CREATE ROLE: the second waits here.
            with metabase.serialized(conn):
                if options["revoke"]:
                    revoke = lambda: metabase.plan_revoke(conn, config)  # noqa: E731
                    self._run(django_conn, conn, revoke, options, replan=revoke)
                else:
                    self._grant(django_conn, conn, config, password, options)
        except AccessError as exc:
            raise CommandError(str(exc)) from None
        except psycopg.Error as exc:
            raise CommandError(
                gettext("PostgreSQL refused: %(error)s") % {"error": metabase.first_line(exc)}
            ) from None

    def _config(self, options: dict) -> AccessConfig:
        try:
            limit = int(options["connection_limit"])
        except ValueError:
            raise AccessError(
                gettext("connection limit must be a whole number, not %(value)s")
                % {"value": repr(options["connection_limit"])}
            ) from None
        return AccessConfig(
            group_role=options["group_role"],
            login_role=options["login_role"],
            migration_role=(
                metabase.validate_role_name(options["migration_role"], gettext("migration role"))
                if options["migration_role"]
                else ""
            ),
            connection_limit=limit,
            statement_timeout_ms=metabase.parse_duration_ms(
                options["statement_timeout"], gettext("statement timeout")
            ),
            idle_in_transaction_timeout_ms=metabase.parse_duration_ms(
                options["idle_in_transaction_timeout"], gettext("idle-in-transaction timeout")
            ),
        )

    def _grant(self, django_conn, conn, config: AccessConfig, password, options) -> None:
        password_state = None
        if password is not None:
            exists = metabase.read_roles(conn, [config.login_role])
            password_state = (
                metabase.probe_password(metabase.login_params(conn), config.login_role, password)
                if exists
                else PasswordState(needs_setting=True, reason="new role")
            )

        def plan() -> metabase.Plan:
            # Ownership first (DROP OWNED also revokes, which the grant plan then sees).
            owned = metabase.plan_owned(
                conn,
                config,
                drop=options["drop_owned"],
                reassign_to=options["reassign_owned_to"],
            )
            if not options["dry_run"]:
                metabase.apply(conn, owned)
            # A dry run shows the placeholder; a real run sends a verifier, never the password.
            grant = metabase.plan_grant(
                conn,
                config,
                password=None if options["dry_run"] else password,
                password_state=password_state,
            )
            if not options["dry_run"]:
                return metabase.Plan(grant.database, grant.changes, grant.notes, owned.changes)
            grant.changes[:0] = owned.changes
            return grant

        def replan() -> metabase.Plan:
            return metabase.plan_grant(
                conn, config, password=None, password_state=PasswordState(needs_setting=False)
            )

        self._run(django_conn, conn, plan, options, replan=replan)

    def _run(self, django_conn, conn, plan_fn, options, *, replan=None) -> None:
        revoke = options["revoke"]
        if options["dry_run"]:
            plan = plan_fn()
            header = [
                ngettext(
                    "%(command)s --dry-run: %(count)s change for database %(database)s; "
                    "nothing was run.",
                    "%(command)s --dry-run: %(count)s changes for database %(database)s; "
                    "nothing was run.",
                    len(plan.changes),
                )
                % {
                    "command": "metabase_access --revoke" if revoke else "metabase_access",
                    "count": len(plan.changes),
                    "database": plan.database,
                },
                gettext("Run it as a role that may create roles and grant on these tables, e.g."),
                '  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 '
                '-v metabase_password="$METABASE_DB_PASSWORD" -f metabase.sql',
                gettext(
                    "(psql then sends the password in clear text; to keep it out of server "
                    "logs, set it afterwards"
                ),
                gettext("with psql's \\password, which sends only a SCRAM verifier)."),
            ]
            self.stdout.write(metabase.render(plan, conn, header=header), ending="")
            return
        with transaction.atomic(using=django_conn.alias):
            plan = plan_fn()
            metabase.apply(conn, plan)
            plan.changes[:0] = plan.applied_before
            if replan is not None:
                leftover = replan()
                if leftover.changes:
                    # Raising rolls the whole transaction back: never a half-applied change.
                    raise AccessError(
                        gettext(
                            "the grants did not reach the wanted state (nothing was changed); "
                            "still to do: %(change)s"
                        )
                        % {"change": leftover.changes[0].summary}
                    )
        for note in plan.notes:
            self.stdout.write(gettext("note: %(note)s") % {"note": note})
        what = gettext("Revoked Metabase access") if revoke else gettext("Metabase access")
        if not plan.changes:
            self.stdout.write(
                gettext("%(what)s in database %(database)s: nothing to change.")
                % {"what": what, "database": plan.database}
            )
            return
        self.stdout.write(
            ngettext(
                "%(what)s in database %(database)s: %(count)s change",
                "%(what)s in database %(database)s: %(count)s changes",
                len(plan.changes),
            )
            % {"what": what, "database": plan.database, "count": len(plan.changes)}
        )
        for change in plan.changes:
            self.stdout.write(f"  - {change.summary}")

    def _check(self, conn, config: AccessConfig, password: str) -> None:
        params = metabase.login_params(conn)
        self.stdout.write(
            gettext("Checking as %(role)s on %(host)s database %(database)s:")
            % {
                "role": config.login_role,
                "host": params.get("host") or gettext("local socket"),
                "database": params.get("dbname", "?"),
            }
        )
        results = catalog_findings(conn, config) + run_checks(params, config, password)
        for result in results:
            line = str(result)
            self.stdout.write(self.style.ERROR(line) if result.status == FAIL else line)
        bad = failed(results)
        if bad:
            raise CommandError(
                ngettext(
                    "%(bad)s of %(count)s check failed",
                    "%(bad)s of %(count)s checks failed",
                    len(results),
                )
                % {"bad": len(bad), "count": len(results)}
            )
        self.stdout.write(
            ngettext("The %(count)s check passed.", "All %(count)s checks passed.", len(results))
            % {"count": len(results)}
        )
