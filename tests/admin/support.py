"""Helpers shared by the admin tests: every registered model, rows of any model."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db import models
from django.urls import reverse
from model_bakery import baker

_M = TypeVar("_M", bound=models.Model)


def registered_models() -> list[type[models.Model]]:
    """Every model on the portal's admin site, including ones other apps add later."""
    return list(admin.site._registry)


def model_id(model: type[models.Model]) -> str:
    return model._meta.label


def admin_url(model: type[models.Model], view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def make_rows(model: type[_M], quantity: int) -> list[_M]:
    """``quantity`` rows with every required field filled and each foreign key set to
    its own new row (so a list that forgets ``select_related`` shows up as N+1)."""
    fill = [
        f.name
        for f in model._meta.concrete_fields
        if f.is_relation and f.null and not f.primary_key
    ]
    return baker.make(model, _quantity=quantity, _fill_optional=fill)
