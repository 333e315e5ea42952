from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    """The diagnostics pages, their statistics history and their permissions."""

    name = "diagnostics"
    label = "diagnostics"
    verbose_name = "Database diagnostics"
