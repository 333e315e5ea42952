from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Projects and agent sessions"
    #: The PostgreSQL schema that holds this app's tables.
    schema = "core"
