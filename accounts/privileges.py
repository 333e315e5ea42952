"""Nobody gains through the admin a privilege they do not hold.

The rule, checked on the server for every user and group form (the form's choices
are narrowed too, but a hand-made POST is validated the same way):

- Only a superuser sets or clears ``is_superuser`` (on anyone, themselves included),
  and only a superuser changes or deletes a superuser (email, password, groups, ...).
- A permission may be granted (to a user directly or to a group) only by someone who
  holds it; a group may be given to a user only by someone who holds every permission
  of that group. Removing is always allowed: it gives nothing.
- The audit trail's add/change/delete permissions (:data:`accounts.roles.NEVER`) are
  never granted, not even by a superuser: the audit tables are written by the portal
  only, and PostgreSQL's triggers refuse updates anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.contrib.auth.models import Group, Permission
from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from .roles import NEVER


def permission_name(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def _never_q() -> Q:
    q = Q()
    for prefix in NEVER:
        app, codename = prefix.split(".", 1)
        q |= Q(content_type__app_label=app, codename__startswith=codename)
    return q


def grantable_permissions(actor: Any) -> QuerySet[Permission]:
    """The permissions ``actor`` may hand out: those it holds, never the audit writes."""
    permissions = Permission.objects.exclude(_never_q()).select_related("content_type")
    if actor.is_active and actor.is_superuser:
        return permissions
    held = actor.get_all_permissions() if actor.is_active else set()
    q = Q(pk__in=[])
    for name in held:
        app, codename = name.split(".", 1)
        q |= Q(content_type__app_label=app, codename=codename)
    return permissions.filter(q)


def grantable_groups(actor: Any) -> QuerySet[Group]:
    """Groups ``actor`` may give: none holding a permission ``actor`` could not grant."""
    forbidden = Permission.objects.exclude(pk__in=grantable_permissions(actor).values("pk"))
    return Group.objects.exclude(permissions__in=forbidden)


def refused(
    actor: Any,
    before: Iterable[Any],
    after: Iterable[Any],
    allowed: QuerySet,
    label: str,
) -> forms.ValidationError | None:
    """A form error when ``after`` adds anything to ``before`` that is not ``allowed``."""
    added = {obj.pk for obj in after} - {obj.pk for obj in before}
    if not added:
        return None
    denied = added - set(allowed.filter(pk__in=added).values_list("pk", flat=True))
    if not denied:
        return None
    names = sorted(str(obj) for obj in after if obj.pk in denied)
    return forms.ValidationError(
        gettext("You cannot grant %(label)s you do not hold yourself: %(names)s."),
        code="privilege_escalation",
        params={"label": label, "names": ", ".join(names)},
    )


def _permissions_or(grantable: QuerySet[Permission], have: Any) -> QuerySet[Permission]:
    return (
        Permission.objects.filter(Q(pk__in=grantable.values("pk")) | Q(pk__in=have))
        .select_related("content_type")
        .order_by("content_type__app_label", "content_type__model", "codename")
    )


def may_manage(actor: Any, target: Any) -> bool:
    """Only a superuser changes (or deletes) a superuser."""
    return target is None or not target.is_superuser or actor.is_superuser


class GuardedUserForm(forms.ModelForm):
    """A user form that refuses, on the server, whatever the rule above forbids.

    ``actor`` is set by the admin (``UserAdmin.get_form``) before validation.
    """

    actor: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.actor is None:
            return
        # Narrow the choices to what may be granted, plus what the user already has
        # (so an unrelated save does not silently take it away).
        target = self.instance if self.instance.pk else None
        if "groups" in self.fields:
            have = target.groups.values("pk") if target else []
            cast(
                forms.ModelMultipleChoiceField, self.fields["groups"]
            ).queryset = Group.objects.filter(
                Q(pk__in=grantable_groups(self.actor).values("pk")) | Q(pk__in=have)
            )
        if "user_permissions" in self.fields:
            have_p = target.user_permissions.values("pk") if target else []
            cast(
                forms.ModelMultipleChoiceField, self.fields["user_permissions"]
            ).queryset = _permissions_or(grantable_permissions(self.actor), have_p)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        actor, target = self.actor, self.instance
        if actor is None:
            return data
        if not actor.is_superuser:
            if "is_superuser" in data and bool(data["is_superuser"]) != bool(
                target.is_superuser if target.pk else False
            ):
                self.add_error(
                    "is_superuser", gettext("Only a superuser may grant or remove superuser.")
                )
            if target.pk and not may_manage(actor, target):
                raise forms.ValidationError(gettext("Only a superuser may change a superuser."))
        before_groups = list(target.groups.all()) if target.pk else []
        before_perms = list(target.user_permissions.all()) if target.pk else []
        groups = grantable_groups(actor)
        if "groups" in data and (
            error := refused(actor, before_groups, data["groups"], groups, gettext("groups"))
        ):
            self.add_error("groups", error)
        if "user_permissions" in data and (
            error := refused(
                actor,
                before_perms,
                data["user_permissions"],
                grantable_permissions(actor),
                gettext("permissions"),
            )
        ):
            self.add_error("user_permissions", error)
        return data


class GuardedGroupForm(forms.ModelForm):
    """A group form that refuses permissions its editor does not hold."""

    actor: Any = None

    class Meta:
        model = Group
        fields = ["name", "permissions"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.actor is None or "permissions" not in self.fields:
            return
        have = self.instance.permissions.values("pk") if self.instance.pk else []
        cast(forms.ModelMultipleChoiceField, self.fields["permissions"]).queryset = _permissions_or(
            grantable_permissions(self.actor), have
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        if self.actor is not None and "permissions" in data:
            before = list(self.instance.permissions.all()) if self.instance.pk else []
            error = refused(
                self.actor,
                before,
                data["permissions"],
                grantable_permissions(self.actor),
                gettext("permissions"),
            )
            if error:
                self.add_error("permissions", error)
        return data


def guarded_form(form_class: type[forms.ModelForm], actor: Any) -> type[forms.ModelForm]:
    """``form_class`` bound to the user who submits it."""
    return type(form_class.__name__, (form_class,), {"actor": actor})
