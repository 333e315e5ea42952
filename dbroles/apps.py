from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DbRolesConfig(AppConfig):
    """PostgreSQL roles as code: declared here, converged by a management command.

    Today: the read-only role Metabase connects with (``metabase_access``).
    """

    name = "dbroles"
    verbose_name = _("Database roles")
