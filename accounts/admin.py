"""Admin for users, companies, OAuth accounts and permission groups.

Users are managed through Django's UserAdmin machinery (hashed passwords, the
change-password form) adapted to the email login; the password hash is never shown.
"""

from __future__ import annotations

import uuid
from typing import cast

from axes.models import AccessAttempt
from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from portal.admin.base import PortalModelAdmin
from portal.admin.display import related_links
from portal.admin.filters import DateRangeFilter
from portal.admin.site import _changelist

from .models import Company, OAuthAccount, User
from .privileges import GuardedGroupForm, GuardedUserForm, guarded_form, may_manage


def caller_ids(user: User) -> list[str]:
    """The ids the gateway may name this user by in a session's ``user_id``: its
    identity-provider id, its email, or ``usr_`` and the first 24 hex digits of its id."""
    ids = [user.email, f"usr_{user.pk.hex[:24]}"]
    if user.keycloak_id:
        ids.insert(0, user.keycloak_id)
    return ids


def _clean_email(form: forms.ModelForm) -> str:
    email = User.objects.normalize_email(form.cleaned_data["email"]).lower()
    others = User.objects.filter(email__iexact=email)
    if form.instance.pk:
        others = others.exclude(pk=form.instance.pk)
    if others.exists():
        raise forms.ValidationError(_("A user with this email address already exists."))
    return email


class PortalUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        return _clean_email(self)


class PortalUserChangeForm(GuardedUserForm, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        return _clean_email(self)


@admin.register(User)
class UserAdmin(PortalModelAdmin, DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ["email"]
    list_display = [
        "email",
        "full_name",
        "company",
        "subscription_plan",
        "is_staff",
        "is_active",
        "last_login",
    ]
    list_filter = [
        "is_staff",
        "is_superuser",
        "is_active",
        "subscription_plan",
        ("created_at", DateRangeFilter),
    ]
    list_select_related = ["company"]
    search_fields = ["email", "first_name", "last_name", "keycloak_id", "company__name"]
    autocomplete_fields = ["company"]
    filter_horizontal = ["groups", "user_permissions"]
    readonly_fields = ["password_status", "related_col", "last_login", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password_status"]}),
        (
            _("Profile"),
            {"fields": ["first_name", "last_name", "company", "department", "subscription_plan"]},
        ),
        (_("Identity provider"), {"fields": ["keycloak_id"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Related"), {"fields": ["related_col"]}),
        (_("Dates"), {"fields": ["last_login", "created_at", "updated_at"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "usable_password", "password1", "password2"],
            },
        ),
    ]

    # The privilege-escalation guard (accounts/privileges.py): the form knows who
    # submits it, superuser is read-only for everyone else, and a superuser can be
    # changed (password included) or deleted by a superuser only.
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return guarded_form(form, request.user) if issubclass(form, GuardedUserForm) else form

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("is_superuser")
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may_manage(request.user, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may_manage(request.user, obj)

    @admin.display(description=_("related"))
    def related_col(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        return related_links(
            [
                (
                    _("Agent sessions"),
                    _changelist("core.CodexSession", user_id__in=",".join(caller_ids(obj))),
                ),
                (_("Projects owned"), _changelist("core.Project", owner=str(obj.pk))),
                (_("OAuth accounts"), _changelist("accounts.OAuthAccount", user=str(obj.pk))),
                (
                    _("Audit entries by this user"),
                    _changelist("audit.ActivityLog", user=str(obj.pk)),
                ),
                (
                    _("Audit entries about this user"),
                    _changelist(
                        "audit.ActivityLog", resource_type="accounts.user", resource_id=str(obj.pk)
                    ),
                ),
                (_("Security events"), _changelist("audit.SecurityEvent", user=str(obj.pk))),
            ]
        )

    @admin.display(description=_("name"))
    def full_name(self, obj: User) -> str:
        return f"{obj.first_name} {obj.last_name}".strip() or "—"

    @admin.display(description=_("password"))
    def password_status(self, obj: User) -> str:
        # Only whether a password is set and how it is stored: never the hash, nor
        # any part of it.
        if obj.pk is None:
            return "—"
        url = reverse("admin:auth_user_password_change", args=[obj.pk])
        if not obj.has_usable_password():
            return format_html(
                gettext(
                    'No password: this user cannot log in with one. <a class="button" href="{}">{}</a>'  # noqa: E501 - one msgid
                ),
                url,
                _("Set password"),
            )
        algorithm = obj.password.split("$", 1)[0] if obj.password else ""
        return format_html(
            gettext('Set (stored as a salted {} hash). <a class="button" href="{}">{}</a>'),
            algorithm or _("hashed"),
            url,
            _("Change password"),
        )


@admin.register(Company)
class CompanyAdmin(PortalModelAdmin):
    list_display = ["name", "domain", "subscription_plan", "max_users", "is_active", "created_at"]
    list_filter = ["subscription_plan", "is_active", ("created_at", DateRangeFilter)]
    search_fields = ["name", "domain"]
    readonly_fields = ["related_col", "created_at", "updated_at"]
    #: A company's sessions are linked as one list of its users' caller ids up to this
    #: many users (the address stays short); beyond, through its users.
    max_users_linked = 50

    @admin.display(description=_("related"))
    def related_col(self, obj: Company) -> str:
        if obj.pk is None:
            return "—"
        users = list(obj.users.order_by("pk")[: self.max_users_linked + 1])
        links = [(_("Users"), _changelist("accounts.User", company=str(obj.pk)))]
        if users and len(users) <= self.max_users_linked:
            ids = ",".join(i for u in users for i in caller_ids(u))
            links.append(
                (
                    _("Agent sessions of its users"),
                    _changelist("core.CodexSession", user_id__in=ids),
                )
            )
        links += [
            (_("Projects"), _changelist("core.Project", company=str(obj.pk))),
            (
                _("OAuth accounts"),
                _changelist("accounts.OAuthAccount", company=str(obj.pk)),
            ),
            (
                _("Audit entries"),
                _changelist(
                    "audit.ActivityLog", resource_type="accounts.company", resource_id=str(obj.pk)
                ),
            ),
        ]
        return related_links(links)


class UserCompanyFilter(admin.SimpleListFilter):
    """Rows whose user belongs to one company (``?company=<uuid>``), shown while active."""

    title = _("company")
    parameter_name = "company"

    def lookups(self, request, model_admin):
        value = self.value()
        company = Company.objects.filter(pk=str(value)).first() if _is_uuid(value) else None
        return [(str(company.pk), company.name)] if company else []

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not _is_uuid(value):
            raise IncorrectLookupParameters("company must be a UUID")
        return queryset.filter(user__company_id=value)


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@admin.register(OAuthAccount)
class OAuthAccountAdmin(PortalModelAdmin):
    list_display = ["provider", "provider_account_id", "user", "created_at"]
    list_filter = ["provider", UserCompanyFilter, ("created_at", DateRangeFilter)]
    list_select_related = ["user"]
    search_fields = ["provider_account_id", "user__email"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]


# Django registers Group on the default site with a stock ModelAdmin; every admin of
# the portal inherits PortalModelAdmin (auditing, list defaults), so replace it.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


# Django's GroupAdmin.formfield_for_manytomany takes request=None; the portal's mixin
# takes the request Django's admin always passes.
@admin.register(Group)
class GroupAdmin(PortalModelAdmin, DjangoGroupAdmin):  # type: ignore[misc]
    form = GuardedGroupForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        return guarded_form(super().get_form(request, obj, change=change, **kwargs), request.user)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(PortalModelAdmin):
    """Logins locked out (or counting towards it). Deleting an attempt unlocks the pair."""

    list_display = ["attempt_time", "username", "ip_address", "failures_since_start"]
    search_fields = ["username", "=ip_address"]
    fields = ["attempt_time", "username", "ip_address", "user_agent", "failures_since_start"]
    # The same list; mypy types ``fields`` as the stubs' field groups (lists of names).
    readonly_fields = cast(list[str], fields)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
