"""Change forms that cannot lose someone else's update.

The version a change form was read at travels with it: a hidden ``_portal_version``
field, a signed token holding a keyed digest of each field the form writes, as the row
was stored when the form was rendered. Why digests of the stored values and not an
``updated_at`` column: the gateway writes several tables directly and not every table
has such a column, and only the fields the form writes back can be overwritten; a digest
of those is exact for every table whoever wrote the row. Keyed (HMAC with SECRET_KEY),
so the page reveals nothing of a value it does not show (a password hash).

On a save, :meth:`VersionedChangeMixin.get_object` locks the row (``SELECT ... FOR
UPDATE``, in the view's transaction) and reads it again after the lock: the form's
check, the audit entry's "before" values (:mod:`audit.admin_mixins`) and the update all
see the row as it is overwritten, and no other save can slip in between. If a field the
form writes changed since the form was read, the save is refused with a message naming
those fields and their current values; the form is shown again with the user's input
and the current version, so a second save overwrites knowingly.

Inline rows are versioned the same way: each inline formset of the page reads its rows
once, at construction (``SELECT ... FOR UPDATE`` on a save, after the parent's row lock,
so two saves of one parent never lock its rows in different orders), and the page
carries a second signed token, ``_portal_inline_version``, with the digests of every
row each formset showed. A save that writes a row (changes it or deletes it) whose
stored fields changed since, or that another session deleted meanwhile, is refused,
naming the row and its fields; rows another session added meanwhile are not in the
posted form and are left as they are. The audit entry's "before" of an inline row is
read in the same transaction after those locks, so it is the row the save overwrites.

A POST without either token (a client that is not the rendered form) is not checked; a
POST with the page's token but without, or with a forged, inline token is refused.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import Model
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from portal.limits import bounded, starts_bounded, statement_limits

VERSION_FIELD = "_portal_version"
INLINE_VERSION_FIELD = "_portal_inline_version"
_SALT = "portal.admin.concurrency"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Values never shown in the "what changed" message.
_SECRET_NAMES = ("password", "secret", "token", "key")


def _normal(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return json.dumps(sorted(str(getattr(v, "pk", v)) for v in value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Model):
        return str(value.pk)
    return "" if value is None else str(value)


def _stored_value(obj: Model, name: str) -> Any:
    field = obj._meta.get_field(name)
    return field.value_from_object(obj)  # type: ignore[union-attr]


def _digest(name: str, value: Any) -> str:
    return salted_hmac(_SALT, f"{name}\x00{_normal(value)}").hexdigest()[:20]


def _model_fields(obj: Model, names: Any) -> list[str]:
    known = {f.name for f in obj._meta.get_fields() if getattr(f, "concrete", False)}
    known |= {f.name for f in obj._meta.many_to_many}
    return sorted(n for n in names if n in known)


def version_token(obj: Model, field_names: Any) -> str:
    """The signed version of ``obj`` as stored, for the fields a form writes."""
    digests = {n: _digest(n, _stored_value(obj, n)) for n in _model_fields(obj, field_names)}
    return signing.dumps({"pk": str(obj.pk), "d": digests}, salt=_SALT, compress=True)


def changed_since(token: str, obj: Model) -> list[str] | None:
    """Field names whose stored value differs from the token's; None if the token is
    not a valid version of this object (forged, or for another row)."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("pk") != str(obj.pk):
        return None
    digests = data.get("d") or {}
    return [
        name
        for name in _model_fields(obj, digests)
        if digests[name] != _digest(name, _stored_value(obj, name))
    ]


def _shown(obj: Model, name: str) -> str:
    field = obj._meta.get_field(name)
    label = str(getattr(field, "verbose_name", name))
    if any(part in name.lower() for part in _SECRET_NAMES):
        return label
    value = _normal(_stored_value(obj, name))
    value = value if len(value) <= 60 else value[:57] + "…"
    return gettext("%(field)s (now %(value)s)") % {"field": label, "value": repr(value)}


def _what_next() -> str:
    return gettext(
        "Nothing was saved. The form shows your input; save again to overwrite those "
        "changes, or reload the page to start from the current values."
    )


def stale_message(obj: Model, names: list[str]) -> str:
    changed = gettext(
        "This %(model)s was changed by someone else after you opened it: %(fields)s."
    ) % {"model": obj._meta.verbose_name, "fields": ", ".join(_shown(obj, n) for n in names)}
    return f"{changed} {_what_next()}"


def _bad_version() -> ValidationError:
    return ValidationError(
        gettext("This form belongs to another version of the page; reload it."),
        code="bad_version",
    )


# --- inline rows ---------------------------------------------------------------------


def _row_digests(obj: Model, field_names: Any) -> dict[str, str]:
    return {n: _digest(n, _stored_value(obj, n)) for n in _model_fields(obj, field_names)}


def inline_version_token(parent: Model, formsets: Any) -> str:
    """The signed versions of the rows each inline formset of ``parent``'s page shows."""
    rows = {
        formset.prefix: formset.portal_stored
        for formset in formsets
        if getattr(formset, "portal_stored", None) is not None
    }
    return signing.dumps({"pk": str(parent.pk), "f": rows}, salt=_SALT, compress=True)


def inline_versions(token: str, parent: Model, prefix: str) -> dict[str, dict[str, str]] | None:
    """The row digests ``token`` holds for the formset ``prefix`` of ``parent``; None if
    the token is not a valid version of this page (forged, or for another object)."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("pk") != str(parent.pk):
        return None
    rows = (data.get("f") or {}).get(prefix)
    return rows if isinstance(rows, dict) else None


def versioned_formset(formset_class: Any, *, lock: bool) -> Any:
    """``formset_class`` reading its rows once (locked ``FOR UPDATE`` when ``lock``) and
    refusing to write a row that changed since the page was read."""

    class VersionedInlineFormSet(formset_class):
        portal_stored: dict[str, dict[str, str]] | None = None

        def get_queryset(self) -> Any:
            if not hasattr(self, "_queryset"):
                qs = super().get_queryset()
                if lock and self.instance.pk is not None:
                    qs = qs.select_for_update()
                # Evaluated now, before any form copies its input onto these instances
                # (hence the copies kept): the versions are those of the rows as stored
                # and, on a save, as locked.
                self.portal_rows = {str(row.pk): copy.copy(row) for row in qs}
                self.portal_stored = {
                    pk: _row_digests(row, self.form.base_fields)
                    for pk, row in self.portal_rows.items()
                }
                self._queryset = qs
            return self._queryset

        def clean(self) -> None:
            super().clean()
            if not self.is_bound or self.instance.pk is None or self.save_as_new:
                return
            token = self.data.get(INLINE_VERSION_FIELD)
            if not token and not self.data.get(VERSION_FIELD):
                return  # not the rendered page: unchecked, like the parent
            self.get_queryset()
            versions = inline_versions(token, self.instance, self.prefix) if token else None
            if versions is None:
                raise _bad_version()
            problems: list[str] = []
            pk_name = self.model._meta.pk.name
            for form in self.initial_forms:
                pk = str(form.data.get(form.add_prefix(pk_name), ""))
                writes = form.has_changed() or self._should_delete_form(form)
                if pk not in versions:
                    raise _bad_version()
                current = self.portal_rows.get(pk)
                if current is None:
                    problems.append(
                        gettext(
                            "The %(model)s “%(row)s” was deleted by someone else after "
                            "you opened the page."
                        )
                        % {"model": self.model._meta.verbose_name, "row": form.instance}
                    )
                    continue
                if not writes:
                    continue
                stored = (self.portal_stored or {}).get(pk, {})
                changed = sorted(n for n, d in versions[pk].items() if stored.get(n) != d)
                if changed:
                    problems.append(
                        gettext(
                            "The %(model)s “%(row)s” was changed by someone else after "
                            "you opened the page: %(fields)s."
                        )
                        % {
                            "model": self.model._meta.verbose_name,
                            "row": current,
                            "fields": ", ".join(_shown(current, n) for n in changed),
                        }
                    )
            if problems:
                raise ValidationError(
                    [*problems, _what_next()],
                    code="stale",
                )

    VersionedInlineFormSet.__name__ = formset_class.__name__
    return VersionedInlineFormSet


class VersionedChangeMixin:
    """Optimistic concurrency for the change form; the row locked for the update."""

    def _lock_row(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None or request.method in _SAFE_METHODS:
            return False
        using = router.db_for_write(type(obj))
        if not connections[using].in_atomic_block:
            return False
        # Read-only admins never write, and a view may not be lockable.
        if not (
            self.has_change_permission(request, obj)  # type: ignore[attr-defined]
            or self.has_delete_permission(request, obj)  # type: ignore[attr-defined]
        ):
            return False
        model = type(obj)
        list(model._base_manager.using(using).select_for_update().filter(pk=obj.pk).values("pk"))
        return True

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if self._lock_row(request, obj):
            # Read again now that the row is ours: the state the form is checked against
            # and the audit trail records is the one the update overwrites.
            obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        return obj

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # A change page never waits long for a row or table another session holds. Only
        # a save waits the longer CHANGE_LOCK_TIMEOUT_MS (for the row another save holds);
        # showing the page reads, and waits no longer than any other page.
        using = router.db_for_write(self.model)  # type: ignore[attr-defined]
        lock_ms = (
            settings.WEB_LOCK_TIMEOUT_MS
            if request.method in _SAFE_METHODS
            else settings.CHANGE_LOCK_TIMEOUT_MS
        )
        if request.method in _SAFE_METHODS:
            if starts_bounded(settings.WEB_STATEMENT_TIMEOUT_MS, lock_ms, using):
                # Under gunicorn the connection's own limits are these: showing the page
                # needs no SET (Django shows it outside a transaction).
                return self._rendered(request, object_id, form_url, extra_context)
            with statement_limits(settings.WEB_STATEMENT_TIMEOUT_MS, lock_ms, using):
                return self._rendered(request, object_id, form_url, extra_context)
        # A save: its reads, writes and audit entries in one transaction.
        with bounded(settings.WEB_STATEMENT_TIMEOUT_MS, lock_ms, using):
            return self._rendered(request, object_id, form_url, extra_context)

    def _rendered(self, request, object_id, form_url, extra_context):
        # Rendered here, inside the bounds: the template reads the database too.
        response = super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        return response

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        if (
            not change
            or obj is None
            # A page its user cannot save is never submitted: no version to check.
            or not self.has_change_permission(request, obj)  # type: ignore[attr-defined]
        ):
            return form_class

        def clean(form: Any) -> dict[str, Any]:
            cleaned = form_class.clean(form)
            # The version to render if the form is shown again: the stored row, before
            # the form's values are copied onto the instance.
            form.portal_version = version_token(form.instance, form.fields)
            token = form.data.get(VERSION_FIELD)
            if token:
                changed = changed_since(token, form.instance)
                if changed is None:
                    raise _bad_version()
                if changed:
                    raise ValidationError(stale_message(form.instance, changed), code="stale")
            return cleaned

        versioned = type(form_class.__name__, (form_class,), {"clean": clean})
        return versioned

    def get_formsets_with_inlines(self, request, obj=None):
        lock = (
            obj is not None
            and obj.pk is not None
            and request.method not in _SAFE_METHODS
            and connections[router.db_for_write(type(obj))].in_atomic_block
        )
        for formset_class, inline in super().get_formsets_with_inlines(request, obj):  # type: ignore[misc]
            yield versioned_formset(formset_class, lock=lock), inline

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if (
            change
            and obj is not None
            and obj.pk is not None
            and "adminform" in context
            # A page that cannot be saved needs no version to check a save against.
            and self.has_change_permission(request, obj)  # type: ignore[attr-defined]
        ):
            form = context["adminform"].form
            token = getattr(form, "portal_version", None)
            context[VERSION_FIELD.lstrip("_")] = token or version_token(obj, form.fields)
            formsets = [f.formset for f in context.get("inline_admin_formsets", [])]
            if formsets:
                context[INLINE_VERSION_FIELD.lstrip("_")] = inline_version_token(obj, formsets)
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[misc]
