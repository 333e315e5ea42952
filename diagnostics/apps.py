from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DiagnosticsConfig(AppConfig):
    """The diagnostics pages, their statistics history and their permissions."""

    name = "diagnostics"
    label = "diagnostics"
    verbose_name = _("Database diagnostics")
