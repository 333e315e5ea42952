"""Secrets in JSON columns hidden from whoever may only look.

An automation's ``config`` (and any other JSON column) can hold API keys, tokens and
URLs with a password. Someone who may change the object sees and edits the real
values; anyone else -- on the detail page, in the list and in the CSV export -- sees
them masked by the audit trail's own function (``audit.services.mask_secrets``: keys
that name a secret, ``user:password@`` in URLs, bearer tokens), so what a Viewer
sees is exactly what the audit trail stores.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import models

from audit.services import mask_secrets


def json_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return _json_fields(model)


@functools.cache
def _json_fields(model: Any) -> tuple[models.Field, ...]:
    # Once per model: list pages ask for every row.
    return tuple(f for f in model._meta.concrete_fields if isinstance(f, models.JSONField))


def masked(value: Any) -> Any:
    return mask_secrets(value, max_text=None) if value is not None else None


def mask_object(obj: models.Model) -> models.Model:
    """``obj`` with its JSON attributes masked in memory (it is never saved so).

    A column the query left out (a list page defers the wide ones) is not shown, so it
    is not read either: reading it would cost one query per row.
    """
    loaded = obj.__dict__  # a deferred column is absent until it is read
    for field in json_fields(type(obj)):
        if field.attname in loaded:
            setattr(obj, field.attname, masked(loaded[field.attname]))
    obj._secrets_masked = True  # type: ignore[attr-defined]
    return obj


def mask_rows(
    fields: Sequence[models.Field | None], rows: Iterable[Sequence[Any]]
) -> Iterator[list[Any]]:
    """CSV rows (values in ``fields`` order; None for a computed column) with the JSON
    columns masked."""
    positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    for row in rows:
        values = list(row)
        for i in positions:
            values[i] = masked(values[i])
        yield values


class MaskedSecretsMixin:
    """ModelAdmin hooks: objects shown to someone without change permission are masked."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if (
            obj is not None
            and json_fields(type(obj))
            and request.method in ("GET", "HEAD")
            and not self.has_change_permission(request, obj)  # type: ignore[attr-defined]
        ):
            mask_object(obj)
        return obj

    def mask_list_rows(self, request, rows) -> None:
        """The list's rows, masked in place when the user may not change them."""
        if json_fields(self.model) and not self.has_change_permission(request):  # type: ignore[attr-defined]
            for obj in rows:
                mask_object(obj)

    def csv_rows(self, request, fields, rows):
        if json_fields(self.model) and not self.has_change_permission(request):  # type: ignore[attr-defined]
            return mask_rows(fields, rows)
        return rows
