"""The schema-drift panel: ``manage.py schema_drift`` (``portal/db/drift.py``) on a
diagnostics page, fast enough to render on every request.

The comparison has a slow half and a fast half. The declared catalog (every model's
table created empty in scratch schemas, in a transaction that is rolled back) takes
about a second, but depends only on the migration files and on how the server spells
definitions: it is built once per process and database alias and kept, with the time
it was built. The live half (the app schemas' catalog and ``django_migrations``) is read
on each request under the diagnostics statement and lock timeouts. Each failure
(no CREATE on the database for the scratch schemas, no SELECT on ``django_migrations``,
a timeout) is a message on the panel, never an error page.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import Error, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy
from psycopg import errors as pg_errors

from diagnostics import ownership, runner
from portal.db import drift
from portal.db.declared import declaration

logger = logging.getLogger(__name__)

# What to do about each kind of difference (the line itself says what and where).
_MISSING = gettext_lazy(
    "A migration created it and it is gone: re-create it as the migration declares "
    "(the definition is in the line), or, if it was removed on purpose, change the model "
    "and run manage.py makemigrations so the migrations agree."
)
_CHANGED = gettext_lazy(
    "Changed by hand since the migration ran: put it back as the migrations declare, or "
    "change the model and write the migration (manage.py makemigrations) so both agree."
)
_HAND_MADE = gettext_lazy(
    "No migration declares it: a fresh database will not have it. Declare it in a model "
    "(a field, Meta.indexes or Meta.constraints) and run manage.py makemigrations, or "
    "drop it if nothing relies on it."
)
ADVICE: dict[str, Promise] = {
    "unapplied migration": gettext_lazy(
        "Run manage.py migrate (the deploy's migrate job) to apply it."
    ),
    "invalid index": gettext_lazy(
        "A failed CREATE INDEX CONCURRENTLY left it: drop it and run manage.py migrate again."
    ),
    "constraint not validated": gettext_lazy(
        "Added NOT VALID and never validated: ALTER TABLE … VALIDATE CONSTRAINT (see the "
        "panel above)."
    ),
}


def advice(kind: str) -> str:
    if kind in ADVICE:
        return str(ADVICE[kind])
    if kind.startswith("missing "):
        return str(_MISSING)
    if kind.startswith("hand-made "):
        return str(_HAND_MADE)
    return str(_CHANGED)


@dataclass(frozen=True)
class Line:
    """One difference: the line ``schema_drift`` prints, and what to do about it."""

    text: str
    kind: str
    advice: str


@dataclass(frozen=True)
class Panel:
    applies: bool  # False: not the project's database, nothing compared
    lines: tuple[Line, ...] = ()
    error: str | None = None  # the comparison could not run at all
    refused_role: str | None = None  # this role may not create the scratch schemas
    notes: tuple[str, ...] = ()  # a part that could not be read (unapplied migrations)
    declared_at: dt.datetime | None = None  # when the declared half was built

    @property
    def ok(self) -> bool:
        return self.error is None and self.refused_role is None


@dataclass
class _Declared:
    catalog: drift.Catalog
    built_at: dt.datetime


_lock = threading.Lock()
_declared: dict[str, _Declared] = {}


@functools.cache
def _migration_plan() -> tuple[tuple[str, str], ...]:
    """Every migration in the order ``migrate`` applies them (the files' graph, read
    once per process): the unapplied ones, in that order, are what ``migrate`` would
    run, as ``MigrationExecutor.migration_plan`` lists them."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    plan: dict[tuple[str, str], None] = {}
    for target in graph.leaf_nodes():
        for node in graph.forwards_plan(target):
            plan.setdefault(node, None)
    return tuple(plan)


def forget() -> None:
    """Drop the kept declared catalogs (tests; a process never needs it)."""
    with _lock:
        _declared.clear()


def _limits(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %(st)s, true),"
            " set_config('lock_timeout', %(lt)s, true)",
            {
                "st": str(settings.DIAGNOSTICS_STATEMENT_TIMEOUT_MS),
                "lt": str(settings.DIAGNOSTICS_LOCK_TIMEOUT_MS),
            },
        )


def _failure(exc: BaseException) -> str:
    return runner.explain_error(
        exc,
        statement_timeout=settings.DIAGNOSTICS_STATEMENT_TIMEOUT_MS,
        lock_timeout=settings.DIAGNOSTICS_LOCK_TIMEOUT_MS,
    ).message


def _declared_catalog(alias: str) -> _Declared:
    """The declared half, built on first use for ``alias`` and kept. Raises the
    database error when the role cannot build it (nothing is kept then)."""
    connection = connections[alias]
    where = connection.settings_dict
    # Keyed by where and as whom: an alias pointed elsewhere is built again.
    key = "\x00".join(str(where.get(k) or "") for k in ("HOST", "PORT", "NAME", "USER"))
    key = f"{alias}\x00{key}"
    with _lock:
        kept = _declared.get(key)
        if kept is not None:
            return kept
        with transaction.atomic(using=alias):
            _limits(alias)
            catalog = drift.declared_state_catalog(connection)
            transaction.set_rollback(True, using=alias)
        kept = _declared[key] = _Declared(catalog, timezone.now())
        return kept


def _unapplied(alias: str) -> list[drift.Difference]:
    """The unapplied migrations, in the order ``migrate`` would apply them."""
    plan = _migration_plan()
    with transaction.atomic(using=alias):
        _limits(alias)
        with connections[alias].cursor() as cursor:
            # Straight to the table (MigrationRecorder's): the recorder first lists
            # every table of the database to see whether it exists, which on a large
            # catalog costs as much as the rest of the panel.
            cursor.execute("SELECT app, name FROM django_migrations")
            applied = set(cursor.fetchall())
        transaction.set_rollback(True, using=alias)
    return [
        drift.Difference("unapplied migration", name=f"{app}.{name}")
        for app, name in plan
        if (app, name) not in applied
    ]


def _live(alias: str) -> drift.Catalog:
    with transaction.atomic(using=alias):
        _limits(alias)
        catalog = drift.live_catalog(connections[alias], declaration().schemas)
        transaction.set_rollback(True, using=alias)
    return catalog


def panel(alias: str) -> Panel:
    """The differences ``manage.py schema_drift`` reports for database ``alias``, or a
    message saying why they cannot be shown."""
    if not ownership.applies(alias):
        return Panel(applies=False)
    role = connections[alias].settings_dict.get("USER") or ""
    try:
        declared = _declared_catalog(alias)
    except Error as exc:
        if isinstance(exc.__cause__, pg_errors.InsufficientPrivilege):
            # The template words it, with the role as a name (in <code>).
            logger.info("schema drift on %s: role %s may not create schemas", alias, role)
            return Panel(applies=True, refused_role=role)
        message = _failure(exc)
        logger.info("schema drift on %s: declared side failed: %s", alias, message)
        return Panel(applies=True, error=message)
    except ValueError as exc:  # a schema name the scratch-schema naming refuses
        return Panel(applies=True, error=str(exc))
    notes: list[str] = []
    try:
        diffs = _unapplied(alias)
    except Error as exc:
        diffs = []
        notes.append(
            gettext("Unapplied migrations not checked: %(error)s") % {"error": _failure(exc)}
        )
    try:
        have = _live(alias)
    except Error as exc:
        return Panel(applies=True, error=_failure(exc), declared_at=declared.built_at)
    diffs += drift.differences(declared.catalog, have)
    return Panel(
        applies=True,
        lines=tuple(Line(d.line(), d.kind, advice(d.kind)) for d in diffs),
        notes=tuple(notes),
        declared_at=declared.built_at,
    )
