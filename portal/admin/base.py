"""Base classes for every ModelAdmin of the portal.

All ModelAdmins inherit from :class:`PortalModelAdmin`, so behaviour every admin
page must share (auditing of writes, large-table list defaults) lives in one place.
"""

from django.contrib import admin

from audit.admin_mixins import AuditedAdminMixin
from portal.admin.changelist import LargeTableAdminMixin
from portal.admin.concurrency import VersionedChangeMixin
from portal.admin.export import CsvExportMixin
from portal.admin.hardening import HardenedAdminMixin
from portal.admin.secrets import MaskedSecretsMixin


class PortalModelAdmin(
    AuditedAdminMixin,
    MaskedSecretsMixin,
    VersionedChangeMixin,
    HardenedAdminMixin,
    CsvExportMixin,
    LargeTableAdminMixin,
    admin.ModelAdmin,
):
    """The portal's ModelAdmin.

    Auditing of every write (:class:`audit.admin_mixins.AuditedAdminMixin`), change forms
    that refuse a stale save and lock the row they update
    (:class:`portal.admin.concurrency.VersionedChangeMixin`), fixes for
    Django admin inputs that would otherwise raise (:mod:`portal.admin.hardening`), and
    large-table list defaults (estimated counts, no facets, bounded pagination, CSV
    export, 404 for unknown ids, hostile query strings answered without a server
    error: :class:`portal.admin.changelist.LargeTableAdminMixin`; the CSV export:
    :class:`portal.admin.export.CsvExportMixin`), secrets in JSON columns masked for
    whoever cannot change the object (:mod:`portal.admin.secrets`).
    """


class ReadOnlyModelAdmin(PortalModelAdmin):
    """Shows rows; nobody adds, changes or deletes them through the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
