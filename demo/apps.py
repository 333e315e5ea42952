from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data and its commands (seed_demo, ensure_demo_admin); no models.

    Installed only outside production (portal/settings.py), and left out of the image
    (.dockerignore): nothing the running portal does depends on it.
    """

    name = "demo"
    label = "demo"
    verbose_name = "Demo data"
