"""Security events from Django's and django-axes' signals, connected in ``AuditConfig.ready``.

- login success / failure (the attempted email only: Django passes credentials with
  the password already replaced, and only the username key is read here), logout;
- lockout (django-axes ``user_locked_out``);
- password change: ``User.save()`` after ``set_password()`` (Django keeps the raw
  password in ``_password`` until the save, exactly to run ``password_changed``; a
  hasher upgrade at login clears it first, so it does not count as a change);
- is_superuser / is_staff / is_active flips;
- group and permission changes (``m2m_changed`` on user.groups, user.user_permissions
  and group.permissions, from either side). These also write an activity-log entry,
  unless an audited admin view is saving that object: its own change entry already
  carries the old and new sets.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, pre_save

from portal.request_context import current_request

from . import services
from .admin_mixins import being_changed_by_admin, being_saved_by_admin
from .models import SecurityEvent

EventType = SecurityEvent.EventType
PRIVILEGE_FLAGS = ("is_superuser", "is_staff", "is_active")


def on_logged_in(sender, request, user, **kwargs) -> None:
    services.record_security_event(
        event_type=EventType.LOGIN_SUCCESS, user=user, email_attempted=user.email, request=request
    )


def on_login_failed(sender, credentials: dict[str, Any], request=None, **kwargs) -> None:
    User = get_user_model()
    attempted = credentials.get(User.USERNAME_FIELD) or credentials.get("username") or ""
    services.record_security_event(
        event_type=EventType.LOGIN_FAILURE,
        email_attempted=str(attempted),
        request=request,
        details={"locked_out": bool(getattr(request, "axes_locked_out", False))},
    )


def on_logged_out(sender, request, user, **kwargs) -> None:
    services.record_security_event(
        event_type=EventType.LOGOUT,
        user=user,
        email_attempted=getattr(user, "email", "") or "",
        request=request,
    )


def on_locked_out(sender, request, username: str, ip_address: str, **kwargs) -> None:
    from axes.helpers import get_cool_off, get_failure_limit

    from accounts.lockout import is_new_lockout

    if not is_new_lockout(request):
        return  # an attempt during a lockout already recorded

    cool_off = get_cool_off(request)
    services.record_security_event(
        event_type=EventType.LOCKOUT,
        email_attempted=username or "",
        request=request,
        ip_address=ip_address,
        details={
            "failure_limit": get_failure_limit(request, getattr(request, "axes_credentials", {})),
            "cool_off_seconds": int(cool_off.total_seconds()) if cool_off else None,
        },
    )


def on_user_pre_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return
    fields = set(update_fields) if update_fields is not None else None
    password_set = getattr(instance, "_password", None) is not None
    if password_set and (fields is None or "password" in fields):
        services.record_security_event(event_type=EventType.PASSWORD_CHANGE, user=instance)
        # The admin's user password form writes its own change entry; every other
        # path (the user's own password page, set_password in a shell) writes this one.
        if not being_changed_by_admin(current_request(), instance):
            services.record_password_change(user=instance)
    watched = [f for f in PRIVILEGE_FLAGS if fields is None or f in fields]
    if not watched:
        return
    stored = type(instance)._base_manager.filter(pk=instance.pk).values(*watched).first()
    if stored is None:
        return
    flips = {
        f: {"old": stored[f], "new": getattr(instance, f)}
        for f in watched
        if stored[f] != getattr(instance, f)
    }
    if flips:
        services.record_security_event(
            event_type=EventType.PERMISSION_CHANGE, user=instance, details={"changes": flips}
        )


# --- group and permission sets -----------------------------------------------------

_EVENT_FOR_FIELD = {
    "groups": EventType.GROUP_CHANGE,
    "user_permissions": EventType.PERMISSION_CHANGE,
    "permissions": EventType.PERMISSION_CHANGE,
}
_ACTIONS = frozenset(
    {"pre_add", "pre_remove", "pre_clear", "post_add", "post_remove", "post_clear"}
)


def make_m2m_receiver(owner_model, field: str):
    """Record changes of ``owner_model.<field>`` (e.g. User.groups), made from either side.

    The sets before the change are read on ``pre_*`` and kept on the signalling
    instance until the matching ``post_*``; one entry per owner whose set changed.
    """
    through = getattr(owner_model, field).through
    accessor = owner_model._meta.get_field(field).remote_field.get_accessor_name()
    attr = f"_audit_m2m_{field}"

    def receiver(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
        if action not in _ACTIONS:
            return
        if action.startswith("pre_"):
            if action == "pre_clear":
                owners = list(getattr(instance, accessor).all()) if reverse else [instance]
            elif not pk_set:
                return  # nothing to add or remove
            elif reverse:  # instance is e.g. a Group, the owners are the users in pk_set
                owners = list(owner_model._base_manager.filter(pk__in=pk_set))
            else:
                owners = [instance]
            setattr(instance, attr, [(o, services.snapshot_m2m(o, field)) for o in owners])
            return
        pending = instance.__dict__.pop(attr, None)
        for owner, before in pending or []:
            after = services.snapshot_m2m(owner, field)
            if before != after:
                _record_set_change(owner, field, before, after)

    m2m_changed.connect(receiver, sender=through, weak=False, dispatch_uid=f"audit-{through}")
    return receiver


def _record_set_change(owner, field: str, before: list[str], after: list[str]) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    is_user = isinstance(owner, get_user_model())
    services.record_security_event(
        event_type=_EVENT_FOR_FIELD[field],
        user=owner if is_user else None,
        email_attempted=owner.email if is_user else "",
        details={
            "resource_type": services.resource_type(owner),
            "resource_id": str(owner.pk),
            "object_repr": str(owner),
            "field": field,
            "added": added,
            "removed": removed,
        },
    )
    request = current_request()
    if being_saved_by_admin(request, owner):
        return
    services.record_activity(
        action=services.CHANGE,
        resource_type=services.resource_type(owner),
        resource_id=owner.pk,
        object_repr=str(owner),
        details={"changes": {field: {"old": before, "new": after}}},
        request=request,
    )


def connect() -> None:
    from axes.signals import user_locked_out
    from django.contrib.auth import signals as auth_signals

    User = get_user_model()
    auth_signals.user_logged_in.connect(on_logged_in, dispatch_uid="audit-login")
    auth_signals.user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
    auth_signals.user_logged_out.connect(on_logged_out, dispatch_uid="audit-logout")
    user_locked_out.connect(on_locked_out, dispatch_uid="audit-lockout")
    pre_save.connect(on_user_pre_save, sender=User, dispatch_uid="audit-user-pre-save")
    make_m2m_receiver(User, "groups")
    make_m2m_receiver(User, "user_permissions")
    make_m2m_receiver(Group, "permissions")
