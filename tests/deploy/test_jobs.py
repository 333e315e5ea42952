"""The one-off jobs of the deploy guide that are Django's own commands.

The superuser job runs ``createsuperuser --no-input`` with DJANGO_SUPERUSER_EMAIL and
DJANGO_SUPERUSER_PASSWORD (from Secret Manager); the user model logs in by email, so
that must be enough to make an administrator who can sign in.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

PASSWORD = "job-created-Pa55word!"


def sign_in(email: str, password: str):
    """Authenticate as the login form does: django-axes needs the request."""
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR="127.0.0.1")
    return authenticate(request=request, username=email, password=password)


def test_createsuperuser_without_input_makes_an_admin_who_can_sign_in(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    call_command("createsuperuser", interactive=False)

    assert "Superuser created successfully." in capsys.readouterr().out
    user = get_user_model().objects.get(email="ops@example.com")
    assert user.is_superuser and user.is_staff and user.is_active
    assert sign_in("ops@example.com", PASSWORD) == user


def test_running_the_superuser_job_again_changes_nothing(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", interactive=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "another-Pa55word!")

    with pytest.raises(CommandError, match="already"):
        call_command("createsuperuser", interactive=False)

    assert get_user_model().objects.filter(email="ops@example.com").count() == 1
    assert sign_in("ops@example.com", PASSWORD) is not None
