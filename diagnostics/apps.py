from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    """Installed for its template tags and static files; it has no models."""

    name = "diagnostics"
    label = "diagnostics"
    verbose_name = "Database diagnostics"
