"""Fixes for admin crashes on malformed input, found by tests/test_admin_fuzz.py.

Each is a 500 in Django 5.2's admin on input a browser never sends but anyone can:
- an empty ``?_to_field=`` passes the admin's to_field check (it is falsy) and then
  fails in ``get_field("")`` on the change and delete views;
- an autocomplete widget re-rendering a form whose submitted value is not a valid
  key (``company=on`` for a UUID key) queries with it and raises ValidationError;
- a changelist action whose selection holds a value that is not a valid key
  (``_selected_action=`` for an integer key) filters with it and raises ValueError.
"""

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect


class _ValidKeysOnly:
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


_TOLERANT = {
    AutocompleteSelect: TolerantAutocompleteSelect,
    AutocompleteSelectMultiple: TolerantAutocompleteSelectMultiple,
}


class HardenedAdminMixin:
    def get_object(self, request, object_id, from_field=None):
        # Empty means "the primary key", as for a missing _to_field.
        return super().get_object(request, object_id, from_field or None)

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                pk.to_python(value)
        except (ValidationError, TypeError, ValueError):
            self.message_user(request, "Invalid selection: nothing was changed.", messages.ERROR)
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
