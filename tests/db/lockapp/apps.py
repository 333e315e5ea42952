from django.apps import AppConfig


class LockAppConfig(AppConfig):
    """A test-only app whose migrations exercise lock-safe migrate (tests/settings.py)."""

    name = "tests.db.lockapp"
    label = "lockapp"
