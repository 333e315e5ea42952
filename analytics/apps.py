from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"
    #: The PostgreSQL schema that holds this app's tables.
    schema = "analytics"
