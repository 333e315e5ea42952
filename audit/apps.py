from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    #: The PostgreSQL schema that holds this app's tables.
    schema = "audit"

    def ready(self) -> None:
        from . import signals

        signals.connect()
