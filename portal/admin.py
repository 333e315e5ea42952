"""The portal's admin site.

Extra pages (diagnostics) are added in :meth:`PortalAdminSite.get_urls`, before the
admin's own URLs, which end with a catch-all.
"""

from django.contrib import admin
from django.urls import URLPattern, URLResolver


class PortalAdminSite(admin.AdminSite):
    site_header = "Agent Gateway Portal"
    site_title = "Agent Gateway Portal"
    index_title = "Dashboard"

    def extra_urls(self) -> list[URLPattern | URLResolver]:
        """URLs of the portal's own admin pages, each wrapped in ``self.admin_view``."""
        from portal.diagnostics.urls import diagnostics_urls

        return diagnostics_urls(self)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [*self.extra_urls(), *super().get_urls()]
