from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    #: The PostgreSQL schema that holds this app's tables.
    schema = "audit"

    def ready(self) -> None:
        from . import roles, signals

        signals.connect()
        post_migrate.connect(
            roles.sync_roles_after_migrate, sender=self, dispatch_uid="audit-sync-roles"
        )
