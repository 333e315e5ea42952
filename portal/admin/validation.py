"""Query-string filter values checked against their column's type before any SQL.

A value PostgreSQL (or psycopg) cannot take -- ``?ip_address=1`` for an ``inet``
column, a malformed UUID or date, a number out of the column's range, a NUL in text
-- would fail inside the query and answer 500. :func:`invalid_lookups` finds them
from the model's fields; the changelist drops those parameters and says why, and
shows the list with the remaining filters.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Mapping

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models
from django.utils.translation import gettext

#: Query-string names of the admin's own (not filters).
RESERVED = {"q", "o", "p", "e", "all", "_to_field", "_popup", "_changelist_filters", "_facets"}
TRUE_FALSE = {"true", "false", "1", "0", "True", "False", "yes", "no", "on", "off", ""}


def _check(field: models.Field, value: str) -> str | None:
    """Why ``value`` cannot be compared with ``field``'s column, or None."""
    if "\x00" in value:
        return gettext("contains a NUL character")
    target = getattr(field, "target_field", None) if field.is_relation else None
    if target is not None:
        return _check(target, value)
    if isinstance(field, models.GenericIPAddressField):
        try:
            ipaddress.ip_address(value.strip())
        except ValueError:
            return gettext("is not an IP address")
        return None
    if isinstance(field, models.UUIDField):
        try:
            uuid.UUID(value.strip())
        except ValueError:
            return gettext("is not a UUID")
        return None
    if isinstance(field, models.BooleanField):
        return None if value in TRUE_FALSE else gettext("is not true or false")
    if isinstance(field, models.IntegerField | models.AutoField):
        try:
            number = int(value.strip())
        except ValueError:
            return gettext("is not a whole number")
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        if (low is not None and number < low) or (high is not None and number > high):
            return gettext("is out of range for this column")
        return None
    if isinstance(field, models.FloatField | models.DecimalField):
        try:
            real = float(value.strip())
        except ValueError:
            return gettext("is not a number")
        return None if math.isfinite(real) else gettext("is not a finite number")
    if isinstance(field, models.DateTimeField | models.DateField | models.TimeField):
        try:
            parsed = field.to_python(value.strip())
        except ValidationError:
            parsed = None
        return None if parsed is not None or not value.strip() else gettext("is not a valid date")
    return None


def invalid_lookups(model: type[models.Model], params: Mapping[str, list[str]]) -> dict[str, str]:
    """Query-string filters of ``model`` whose values cannot reach SQL: name -> reason."""
    problems: dict[str, str] = {}
    opts = model._meta
    for key, values in params.items():
        if key in RESERVED:
            continue
        if any("\x00" in v for v in values) or "\x00" in key:
            problems[key] = gettext("contains a NUL character")
            continue
        name, *lookups = key.split("__")
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            continue  # a list filter's own parameter, or refused by the changelist
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
            continue
        if field.generated or field.get_internal_type() == "SearchVectorField":
            # Derived by PostgreSQL (the stored search document): a value typed into the
            # address would be parsed as a tsvector and can fail there.
            problems[key] = gettext("is a column that cannot be filtered on")
            continue
        lookup = lookups[-1] if lookups else "exact"
        if isinstance(field, models.BinaryField) and lookup != "isnull":
            # bytea (the audit chain's hashes): text from the address is not bytes, and
            # psycopg refuses it before PostgreSQL sees it.
            problems[key] = "is binary data, which cannot be filtered on"
            continue
        for value in values:
            if lookup == "isnull":
                reason = None if value in TRUE_FALSE else gettext("is not true or false")
            elif lookup == "in":
                reason = next((r for part in value.split(",") if (r := _check(field, part))), None)
            elif lookups and lookup not in {"exact", "gt", "gte", "lt", "lte", "iexact"}:
                reason = None  # not a comparison with the column's type
            else:
                reason = _check(field, value)
            if reason:
                problems[key] = reason
                break
    return problems
