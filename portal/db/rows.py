"""Model instances from rows read with plain SQL.

A few hot pages read their rows with one plain-SQL query where building the ORM's
query cost more than running it. ``Model.from_db`` takes the loaded values in the
model's own field order; :func:`loaded` takes them by name, so a query's column order
cannot put a value in the wrong field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def loaded(model: type[M], using: str, values: dict[str, Any]) -> M:
    """An instance of ``model`` as loaded from ``using``, with only ``values`` (by field
    attname) loaded; the other fields are deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"not fields of {model._meta.label}: {sorted(unknown)}")
    return model.from_db(using, names, [values[n] for n in names])
