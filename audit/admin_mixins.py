"""Auditing for every ModelAdmin: ``PortalModelAdmin`` inherits :class:`AuditedAdminMixin`.

What is recorded, one ``audit.activity_logs`` entry each:
- create (add view): every field of the new object;
- change (change view, list_editable, the user password view): the fields whose
  stored value changed, old and new, many-to-many sets included (a user's groups and
  permissions, a group's permissions); a save that changed nothing writes nothing;
- delete (delete view and the bulk "delete selected" action): the object's last state;
- inline objects created, changed or deleted through a formset, the same way.

Atomicity: Django runs the add/change/delete views in a transaction but not the
changelist's actions nor the user password view; :meth:`AuditedAdminMixin.get_urls`
wraps every POST to this ModelAdmin's URLs in ``transaction.atomic``, so a change and
its audit entry commit or roll back together whatever the view.

Before-state: the object as the view loads it for a save (:meth:`get_object`), which
is after the row is locked ``FOR UPDATE`` in the view's transaction
(:class:`portal.admin.concurrency.VersionedChangeMixin` comes after this mixin), so the
"old" values are exactly the ones the update overwrites; at the latest it is read just
before it is saved (:meth:`save_model`), before the form's values reach the database.
"""

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME as ACTION_CHECKBOX
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, reverse

from . import services

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _key(obj) -> tuple[str, str]:
    return (services.resource_type(obj), str(obj.pk))


def _before(request: HttpRequest) -> dict[tuple[str, str], dict]:
    # Per-request state kept on the request object (HttpRequest declares no such field).
    if not hasattr(request, "_audit_before"):
        setattr(request, "_audit_before", {})  # noqa: B010
    before: dict[tuple[str, str], dict] = getattr(request, "_audit_before")  # noqa: B009
    return before


def being_saved_by_admin(request: HttpRequest | None, obj) -> bool:
    """Whether an audited admin view is saving ``obj`` in this request.

    The many-to-many signal receivers use it: the admin's own change entry already
    carries the group/permission diff, so they write only the security event.
    """
    if request is None or obj.pk is None:
        return False
    return _key(obj) in getattr(request, "_audit_saving", set())


def being_changed_by_admin(request: HttpRequest | None, obj) -> bool:
    """Whether an audited admin view loaded ``obj`` to change it (its entry is coming)."""
    if request is None or obj.pk is None:
        return False
    return being_saved_by_admin(request, obj) or _key(obj) in getattr(request, "_audit_before", {})


def _mark_saving(request: HttpRequest, obj) -> None:
    if not hasattr(request, "_audit_saving"):
        setattr(request, "_audit_saving", set())  # noqa: B010
    saving: set[tuple[str, str]] = getattr(request, "_audit_saving")  # noqa: B009
    saving.add(_key(obj))


def _atomic_on_post(view, model):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method in _SAFE_METHODS:
            return view(request, *args, **kwargs)
        with transaction.atomic(using=router.db_for_write(model)):
            return view(request, *args, **kwargs)

    return wrapper


if TYPE_CHECKING:
    # The mixins are only ever combined with ModelAdmin (portal.admin.base); for the
    # type checker they are ModelAdmins, so super() and self.opts etc. resolve.
    _ModelAdminBase = ModelAdmin[Any]
else:
    _ModelAdminBase = object


def _audited_action(func, name: str):
    """An admin action that also appends one ``bulk_action`` entry when it runs.

    ``delete_selected``'s first step only shows its confirmation page and changes
    nothing: recorded when confirmed (``post``). The entry is written after the
    action, in the same transaction (every admin POST is atomic).
    """

    @functools.wraps(func)
    def action(modeladmin, request, queryset):
        if name == "delete_selected" and not request.POST.get("post"):
            return func(modeladmin, request, queryset)
        # the selection as it was before the action (a delete empties the queryset)
        across = request.POST.get("select_across") == "1"
        if across:
            pks, count = _pks(queryset), queryset.count()
        else:
            pks = request.POST.getlist(ACTION_CHECKBOX)
            count = len(pks)
        response = func(modeladmin, request, queryset)
        services.record_bulk_action(
            model=modeladmin.model,
            name=name,
            pks=pks,
            count=count,
            select_across=across,
            request=request,
        )
        return response

    return action


def _pks(queryset) -> list:
    return list(queryset.values_list("pk", flat=True)[: services.MAX_LISTED])


class AuditedAdminMixin(_ModelAdminBase):
    """Writes an audit entry for each create, change and delete made in this admin."""

    # --- every POST in one transaction ------------------------------------------

    def get_urls(self):
        urls = []
        for pattern in super().get_urls():
            if isinstance(pattern, URLPattern):
                pattern = URLPattern(
                    pattern.pattern,
                    _atomic_on_post(pattern.callback, self.model),
                    pattern.default_args,
                    pattern.name,
                )
            urls.append(pattern)
        return urls

    # --- before-state -----------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method not in _SAFE_METHODS:
            _before(request).setdefault(_key(obj), services.snapshot(obj))
        return obj

    def save_model(self, request, obj, form, change):
        if change and obj.pk is not None and _key(obj) not in _before(request):
            stored = services.stored_snapshot(type(obj), obj.pk)
            if stored is not None:
                _before(request)[_key(obj)] = stored
        if obj.pk is not None:
            _mark_saving(request, obj)
        super().save_model(request, obj, form, change)
        _mark_saving(request, obj)

    # --- create and change (called after the object and its relations are saved) ---

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        services.record_change(
            action=services.CREATE,
            obj=obj,
            before=None,
            after=services.stored_snapshot(type(obj), obj.pk),
            request=request,
        )
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        before = _before(request).pop(_key(obj), None)
        after = services.stored_snapshot(type(obj), obj.pk)
        if before is None:
            # A code path that loaded the object some other way: still leave a trace.
            services.record_activity(
                action=services.CHANGE,
                resource_type=services.resource_type(obj),
                resource_id=obj.pk,
                object_repr=str(obj),
                details={"changes": {}, "message": message, "after": after},
                request=request,
            )
        else:
            services.record_change(
                action=services.CHANGE, obj=obj, before=before, after=after, request=request
            )
        return entry

    # --- delete -----------------------------------------------------------------

    def delete_model(self, request, obj):
        before = services.snapshot(obj)
        pk, text = obj.pk, str(obj)
        using = router.db_for_write(type(obj))
        cascade = services.cascade_of([obj], using)
        super().delete_model(request, obj)
        services.record_cascade(
            roots=[(services.resource_type(obj), str(pk), text)], cascade=cascade, request=request
        )
        services.record_activity(
            action=services.DELETE,
            resource_type=services.resource_type(obj),
            resource_id=pk,
            object_repr=text,
            details={"changes": services.diff(before, None)},
            request=request,
        )

    def delete_queryset(self, request, queryset):
        objs = list(queryset)
        doomed = [
            (services.resource_type(obj), obj.pk, str(obj), services.snapshot(obj)) for obj in objs
        ]
        cascade = services.cascade_of(objs, queryset.db)
        super().delete_queryset(request, queryset)
        services.record_cascade(
            roots=[(label, str(pk), text) for label, pk, text, _ in doomed],
            cascade=cascade,
            request=request,
        )
        services.record_activities(
            {
                "action": services.DELETE,
                "resource_type": label,
                "resource_id": pk,
                "object_repr": text,
                "details": {"changes": services.diff(before, None), "bulk": True},
                "request": request,
            }
            for label, pk, text, before in doomed
        )

    # --- every admin action on a selection ------------------------------------------

    def get_actions(self, request):
        actions = super().get_actions(request)
        audited = {}
        for name, entry in actions.items():
            if entry is not None:
                func, _name, description = entry
                audited[name] = (_audited_action(func, name), name, description)
        return audited

    # --- inline formsets --------------------------------------------------------

    def save_formset(self, request, form, formset, change):
        # Read after the formset locked its rows (portal/admin/concurrency.py), in the
        # same transaction: the "before" of each row is the state this save overwrites.
        model = formset.model
        before: dict[Any, dict] = {}
        for inline_form in formset.initial_forms:
            pk = inline_form.instance.pk
            if pk is not None and (
                inline_form.has_changed() or formset._should_delete_form(inline_form)
            ):
                stored = services.stored_snapshot(model, pk)
                if stored is not None:
                    before[pk] = stored
        deleted_pks = {
            f.instance.pk: f.instance
            for f in formset.initial_forms
            if formset._should_delete_form(f) and f.instance.pk is not None
        }
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            services.record_change(
                action=services.CREATE,
                obj=obj,
                before=None,
                after=services.stored_snapshot(model, obj.pk),
                request=request,
            )
        for obj, _fields in formset.changed_objects:
            services.record_change(
                action=services.CHANGE,
                obj=obj,
                before=before.get(obj.pk),
                after=services.stored_snapshot(model, obj.pk),
                request=request,
            )
        for pk, obj in deleted_pks.items():
            services.record_activity(
                action=services.DELETE,
                resource_type=services.resource_type(model),
                resource_id=pk,
                object_repr=str(obj),
                details={"changes": services.diff(before.get(pk), None)},
                request=request,
            )

    # --- "History" shows the audit trail ------------------------------------------

    def history_view(self, request, object_id, extra_context=None):
        """The object's audit entries (the activity log filtered to it).

        Falls back to Django's own history page for users who may not read the
        audit trail.
        """
        if not request.user.has_perm("audit.view_activitylog"):
            return super().history_view(request, object_id, extra_context)
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            # A private ModelAdmin method (overridden in LargeTableAdminMixin) that
            # django-stubs does not declare.
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        url = reverse(f"{self.admin_site.name}:audit_activitylog_changelist")
        query = urlencode({"resource_type": services.resource_type(obj), "resource_id": obj.pk})
        return HttpResponseRedirect(f"{url}?{query}")
