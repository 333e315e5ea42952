from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """Installs the portal's AdminSite as the default ``admin.site``."""

    default_site = "portal.admin.PortalAdminSite"
