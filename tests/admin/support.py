"""Helpers shared by the admin tests: every registered model, rows of any model."""

from __future__ import annotations

import re
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


def form_data(page: str) -> dict[str, str | list[str]]:
    """The change form's inputs as the browser would post them."""
    data: dict[str, str | list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if kind and kind.group(1) in {"checkbox", "radio"}:
            if "checked" in tag:
                data[name.group(1)] = value.group(1) if value else "on"
            continue
        if kind and kind.group(1) == "submit":
            continue
        data[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.findall(r'<option value="([^"]*)"[^>]*selected', body)
        if chosen:
            data[name] = chosen if len(chosen) > 1 else chosen[0]
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        data[name] = text.strip("\n")
    return {
        k: v.replace("&quot;", '"').replace("&amp;", "&") if isinstance(v, str) else v
        for k, v in data.items()
    }
