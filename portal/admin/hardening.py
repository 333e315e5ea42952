"""Fixes for admin crashes on malformed input, found by tests/test_admin_fuzz.py.

Each is a 500 in Django 5.2's admin on input a browser never sends but anyone can:
- an empty ``?_to_field=`` passes the admin's to_field check (it is falsy) and then
  fails in ``get_field("")`` on the change and delete views;
- an autocomplete widget re-rendering a form whose submitted value is not a valid
  key (``company=on`` for a UUID key) queries with it and raises ValidationError;
- a changelist action whose selection holds a value that is not a valid key
  (``_selected_action=`` for an integer key) filters with it and raises ValueError.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin.widgets import (
    AutocompleteMixin,
    AutocompleteSelect,
    AutocompleteSelectMultiple,
)
from django.core.exceptions import ValidationError
from django.forms import Widget
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    # Only ever mixed into the autocomplete widgets (below).
    _AutocompleteBase = AutocompleteMixin
else:
    _AutocompleteBase = object


class _ValidKeysOnly(_AutocompleteBase):
    """Render only the submitted values that can be keys of the related model."""

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        target = remote.model._meta.get_field(getattr(remote, "field_name", None) or "pk")
        if target.name == "pk" or target.primary_key:
            target = remote.model._meta.pk
        valid = []
        for item in value:
            try:
                target.to_python(item)
            except (ValidationError, TypeError, ValueError):
                continue
            valid.append(item)
        return super().optgroups(name, valid, attr)


class TolerantAutocompleteSelect(_ValidKeysOnly, AutocompleteSelect):
    pass


class TolerantAutocompleteSelectMultiple(_ValidKeysOnly, AutocompleteSelectMultiple):
    pass


_TOLERANT: dict[type, type[Widget]] = {
    AutocompleteSelect: TolerantAutocompleteSelect,
    AutocompleteSelectMultiple: TolerantAutocompleteSelectMultiple,
}

if TYPE_CHECKING:
    # The mixins are only ever combined with ModelAdmin (portal.admin.base); for the
    # type checker they are ModelAdmins, so super() and self.opts etc. resolve.
    _ModelAdminBase = ModelAdmin[Any]
else:
    _ModelAdminBase = object


class HardenedAdminMixin(_ModelAdminBase):
    def get_object(self, request, object_id, from_field=None):
        # Empty means "the primary key", as for a missing _to_field.
        return super().get_object(request, object_id, from_field or None)

    # django-stubs 6 adds Django 6.0's action_location parameter; Django 5.2 has none.
    def response_action(self, request, queryset):  # type: ignore[override]
        pk = self.model._meta.pk
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                pk.to_python(value)
        except (ValidationError, TypeError, ValueError):
            self.message_user(request, _("Invalid selection: nothing was changed."), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return _tolerant(super().formfield_for_foreignkey(db_field, request, **kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return _tolerant(super().formfield_for_manytomany(db_field, request, **kwargs))


def _tolerant(formfield):
    widget = getattr(formfield, "widget", None)
    if type(widget) in _TOLERANT:
        widget.__class__ = _TOLERANT[type(widget)]
    return formfield
