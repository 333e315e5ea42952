"""The demo commands' refusal to touch a production database."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError


def refuse_in_production(command: str) -> None:
    """Stop ``command`` with a one-line reason when the settings are production's.

    Made-up rows and a demo superuser have no place in real data. The demo app is not
    installed in production at all; this holds even where it is installed anyway.
    """
    if settings.PRODUCTION:
        raise CommandError(f"{command} refuses to run with DJANGO_ENV=production")
