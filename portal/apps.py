from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The project package as an app: its admin framework's templates, template tags,
    static files and the project-wide ``migrate`` command."""

    name = "portal"
    label = "portal"
    verbose_name = _("Portal")
    default = False


class PortalAdminConfig(AdminConfig):
    """Installs the portal's AdminSite as the default ``admin.site``."""

    default_site = "portal.admin.site.PortalAdminSite"
