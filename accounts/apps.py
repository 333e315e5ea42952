from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")
    #: The PostgreSQL schema that holds this app's tables.
    schema = "auth"

    def ready(self) -> None:
        from . import roles

        # Once per migrate: the receiver creates every app's permissions itself, so
        # it need not wait for the apps listed after this one.
        post_migrate.connect(
            roles.sync_roles_after_migrate, sender=self, dispatch_uid="accounts-sync-roles"
        )
