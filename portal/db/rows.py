"""Model instances from rows read with plain SQL.

A few hot pages read their rows with one plain-SQL query where building the ORM's
query cost more than running it. :func:`select` runs such a query and returns model
instances as the ORM would: each column names a field, each value goes through that
field's own conversion from the database. ``Model.from_db`` takes the values in the
model's field order; :func:`loaded` takes them by name, so a query's column order
cannot put a value in the wrong field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import connections, models, router

M = TypeVar("M", bound=models.Model)


def loaded(model: type[M], using: str, values: dict[str, Any]) -> M:
    """An instance of ``model`` as loaded from ``using``, with only ``values`` (by field
    attname) loaded; the other fields are deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"not fields of {model._meta.label}: {sorted(unknown)}")
    return model.from_db(using, names, [values[n] for n in names])


def select(model: type[M], sql: str, params: Mapping[str, Any]) -> list[M]:
    """The rows of ``sql`` as instances of ``model``, read where the router reads the
    model. Every column is named for a field (its attname) and converted as that field
    converts what the database returns (a JSON column arrives as text and is parsed)."""
    using = router.db_for_read(model)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description or ()]
        rows = cursor.fetchall()
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise ValueError(f"not fields of {model._meta.label}: {sorted(unknown)}")
    converters = [(fields[name], fields[name].get_db_converters(connection)) for name in names]
    instances = []
    for row in rows:
        values = {}
        for (field, convert), value in zip(converters, row, strict=True):
            for converter in convert:
                value = converter(value, field, connection)
            values[field.attname] = value
        instances.append(loaded(model, using, values))
    return instances
