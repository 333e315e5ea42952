from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    #: The PostgreSQL schema that holds this app's tables.
    schema = "auth"
