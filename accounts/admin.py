from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from portal.admin_base import PortalModelAdmin

from .models import Company, OAuthAccount, User


class PortalUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(PortalModelAdmin, DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "company", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "subscription_plan"]
    list_select_related = ["company"]
    search_fields = ["email", "first_name", "last_name", "keycloak_id"]
    autocomplete_fields = ["company"]
    readonly_fields = ["last_login", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (
            "Profile",
            {"fields": ["first_name", "last_name", "company", "department", "subscription_plan"]},
        ),
        ("Identity provider", {"fields": ["keycloak_id"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "created_at", "updated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]


@admin.register(Company)
class CompanyAdmin(PortalModelAdmin):
    list_display = ["name", "domain", "subscription_plan", "max_users", "is_active", "created_at"]
    list_filter = ["subscription_plan", "is_active"]
    search_fields = ["name", "domain"]


@admin.register(OAuthAccount)
class OAuthAccountAdmin(PortalModelAdmin):
    list_display = ["provider", "provider_account_id", "user", "created_at"]
    list_filter = ["provider"]
    list_select_related = ["user"]
    search_fields = ["provider_account_id", "user__email"]
    autocomplete_fields = ["user"]
