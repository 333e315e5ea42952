from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = _("Audit")
    #: The PostgreSQL schema that holds this app's tables.
    schema = "audit"

    def ready(self) -> None:
        from . import signals

        signals.connect()
