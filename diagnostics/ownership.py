"""Which indexes, constraints and tables the project's migrations declare, as the
diagnostics pages show them (Indexes, Space, Maintenance).

The Indexes page must never offer a hand ``DROP INDEX`` for an index a migration
created (``core.exec_history_document_idx`` is what full-text search runs on): the
next ``migrate`` or a fresh database would bring it back, and until then the code that
relies on it is slow. The advice for such an index is the migration to write.

What is declared, and by which migration, is ``portal/db/declared.py`` (shared with the
schema-drift check); this module only ties it to a diagnostics database alias and words
the advice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.db import connections
from django.utils.translation import gettext

from portal.db import declared as declared_module
from portal.db.declared import Declared


class Owner(Declared):
    """A declared object, with the advice for removing it."""

    @property
    def removal(self) -> str:
        """The migration operation that removes it, for the advice."""
        if self.kind == "constraint" or not self.explicit:
            return gettext(
                "change %(model)s (drop the field's db_index / unique, or the constraint),"
                " then run manage.py makemigrations"
            ) % {"model": self.model}
        return gettext(
            "delete it from %(model)s.Meta.indexes and write the migration: "
            "RemoveIndexConcurrently(model_name=%(model_name)r, name=%(name)r) "
            "(django.contrib.postgres.operations, in a migration with atomic = False)"
        ) % {"model": self.model, "model_name": self.model_name, "name": self.name}


def applies(alias: str) -> bool:
    """Whether ``alias`` is the project's own database (the one its migrations build)."""
    mine, other = connections.settings["default"], connections.settings[alias]
    return all(mine.get(k) == other.get(k) for k in ("HOST", "PORT", "NAME"))


@functools.cache
def _owners() -> dict[tuple[str, str, str], Owner]:
    return {key: Owner(**asdict(obj)) for key, obj in declared_module.declaration().objects.items()}


def declared_objects() -> list[Owner]:
    return list(_owners().values())


def declared_index(alias: str, schema: str, name: str) -> Owner | None:
    """The migration that declares index ``schema.name`` of database ``alias``, or None
    if none does (or ``alias`` is not the project's database)."""
    if not applies(alias):
        return None
    return _owners().get(("index", schema, name))


def declared_constraint(alias: str, schema: str, name: str) -> Owner | None:
    if not applies(alias):
        return None
    return _owners().get(("constraint", schema, name))


def with_owner(
    alias: str, rows: Iterable[Any], name: str = "name"
) -> list[tuple[Any, Owner | None]]:
    """Each row (with ``schema`` and an index name in attribute ``name``) paired with the
    migration that declares that index, or None for a hand-made one."""
    return [(row, declared_index(alias, row.schema, getattr(row, name))) for row in rows]


def marks(alias: str, schema: str) -> bool:
    """Whether objects of ``schema`` get a declared / made-by-hand mark: the project's
    own database, in an app schema (``public`` holds Django's bookkeeping tables, such
    as ``django_migrations``, that no migration declares)."""
    return applies(alias) and schema in declared_module.declaration().schemas


def declared_table(alias: str, schema: str, name: str) -> Owner | None:
    """The migration that declares table (or view) ``schema.name``, or None."""
    if not applies(alias):
        return None
    owners = _owners()
    return owners.get(("table", schema, name)) or owners.get(("view", schema, name))


def tables_with_owner(
    alias: str, rows: Iterable[Any], name: str = "name"
) -> list[tuple[Any, Owner | None, bool]]:
    """Each row (a table: ``schema`` and its name in attribute ``name``), the migration
    that declares it, and whether it gets a mark at all (see ``marks``)."""
    return [
        (row, declared_table(alias, row.schema, getattr(row, name)), marks(alias, row.schema))
        for row in rows
    ]


def constraints_with_owner(alias: str, rows: Iterable[Any]) -> list[tuple[Any, Owner | None, bool]]:
    """Each constraint row (``schema``, ``name``), its declaring migration, and whether it
    gets a mark."""
    return [
        (row, declared_constraint(alias, row.schema, row.name), marks(alias, row.schema))
        for row in rows
    ]
