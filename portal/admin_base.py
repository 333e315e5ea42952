"""Base classes for every ModelAdmin of the portal.

All ModelAdmins inherit from :class:`PortalModelAdmin`, so behaviour every admin
page must share (auditing of writes, large-table list defaults) lives in one place.
"""

from django.contrib import admin

from audit.admin_mixins import AuditedAdminMixin
from portal.admin_hardening import HardenedAdminMixin


class PortalModelAdmin(AuditedAdminMixin, HardenedAdminMixin, admin.ModelAdmin):
    """The portal's ModelAdmin."""


class ReadOnlyModelAdmin(PortalModelAdmin):
    """Shows rows; nobody adds, changes or deletes them through the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
