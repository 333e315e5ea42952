from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PortalConfig(AppConfig):
    """The project package as an app: its admin framework's templates, template tags,
    static files and the project-wide ``migrate`` command."""

    name = "portal"
    label = "portal"
    verbose_name = "Portal"
    default = False


class PortalAdminConfig(AdminConfig):
    """Installs the portal's AdminSite as the default ``admin.site``."""

    default_site = "portal.admin.site.PortalAdminSite"
