from django.apps import AppConfig


class ChainAppConfig(AppConfig):
    """A test-only app whose migrations exercise the schema backend (tests/settings.py)."""

    name = "tests.db.chainapp"
    label = "chainapp"
