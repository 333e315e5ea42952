"""Security headers, cookies, session expiry, `check --deploy`, and strong passwords."""

import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.audit.support import login, make_user

ROOT = Path(__file__).resolve().parents[2]
SECURITY_SETTINGS = [
    "DEBUG",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_HTTPONLY",
    "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "SESSION_COOKIE_AGE",
    "TRUSTED_PROXY_COUNT",
]


def production_env() -> dict[str, str]:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
    )
    env.pop("DEBUG", None)
    return env


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def production_settings(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        code = (
            "import django, json; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{k: getattr(s, k) for k in {SECURITY_SETTINGS!r}}}))"
        )
        result = run("-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_with_production_settings_reports_nothing(django_db_blocker):
    with django_db_blocker.unblock():
        result = run("manage.py", "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_are_hardened(production_settings):
    s = production_settings
    assert s["DEBUG"] is False
    assert s["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert s["SECURE_SSL_REDIRECT"] and s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SESSION_COOKIE_HTTPONLY"] and s["CSRF_COOKIE_HTTPONLY"]
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert s["TRUSTED_PROXY_COUNT"] == 1  # Cloud Run's front end


def script_sources(csp: str) -> list[str]:
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in csp.split(";") if part.strip()
    )
    return directives.get("script-src", directives.get("default-src", "")).split()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "admin:index",
        "admin:accounts_user_changelist",
        "admin:accounts_user_add",
        "admin:audit_activitylog_changelist",
    ],
)
def test_every_page_sends_the_security_headers(admin_client, url):
    assert_security_headers(admin_client.get(reverse(url)))


@pytest.mark.django_db
def test_the_login_and_lockout_pages_send_the_security_headers():
    assert_security_headers(Client().get(reverse("admin:login")))
    make_user("ann@example.com")
    with override_settings(AXES_FAILURE_LIMIT=1):
        _, locked = login("ann@example.com", "wrong")
    assert locked.status_code == 429
    assert_security_headers(locked, status=429)


def assert_security_headers(response, status: int = 200) -> None:
    assert response.status_code == status
    csp = response["Content-Security-Policy"]
    sources = script_sources(csp)
    assert "'self'" in sources
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_production_values_give_hsts_and_secure_httponly_cookies(production_settings):
    user = make_user("ann@example.com")
    applied = {k: v for k, v in production_settings.items() if k != "DEBUG"}
    with override_settings(**applied):
        insecure = Client().get(reverse("admin:login"))
        assert insecure.status_code == 301 and insecure["Location"].startswith("https://")
        client, response = login(user.email, secure=True)
        assert response.status_code == 302
        assert response["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            cookie = client.cookies[name]
            assert cookie["secure"] and cookie["httponly"], name
        session = client.cookies[settings.SESSION_COOKIE_NAME]
        assert session["max-age"] == "" and session["expires"] == ""  # ends with the browser


@pytest.mark.django_db
def test_an_idle_session_expires_and_activity_extends_it():
    user = make_user("ann@example.com")
    client, _ = login(user.email)
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get(reverse("admin:index")).status_code == 200
    extended = Session.objects.get(pk=session.pk).expire_date
    assert extended > timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 300)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_password_validators_refuse_weak_passwords():
    from django.core.exceptions import ValidationError

    for weak in ["short1!", "password1234", "123456789012", "ann@example.com1"]:
        with pytest.raises(ValidationError):
            validate_password(weak, make_user_stub())


def make_user_stub():
    from accounts.models import User

    return User(email="ann@example.com")


@pytest.mark.django_db
def test_the_generated_demo_superuser_password_is_strong(monkeypatch, capsys):
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("PORTAL_ADMIN_EMAIL", "demo@example.com")
    call_command("ensure_demo_admin")
    found = re.search(r"password \(shown once\): (\S+)", capsys.readouterr().out)
    assert found is not None
    password = found.group(1)
    assert len(password) >= 24
    validate_password(password, make_user_stub())
    _, response = login("demo@example.com", password)
    assert response.status_code == 302
