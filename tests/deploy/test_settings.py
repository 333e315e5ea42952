"""Production settings: the settings source (.env or Secret Manager), Cloud Run hosts,
Cloud SQL URLs, the connection pool, media on GCS, static files, logs.

Each test executes ``portal/settings.py`` afresh, from a copy placed in an empty project
directory (so a developer's own ``.env`` cannot leak in), with the environment the test
gives it; the process environment is restored afterwards.

Secret Manager cannot be reached from here: ``FakeSecretManager`` replaces
``google.cloud.secretmanager.SecretManagerServiceClient`` at that boundary (the one class
the loader talks to) and raises the same ``google.api_core`` exceptions the real API does.
Everything else is real, including a pool connection to the test database.
"""

from __future__ import annotations

import os
import runpy
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from google.api_core import exceptions as api_exceptions
from google.cloud import secretmanager

REPO = Path(__file__).resolve().parents[2]

# Variables the settings read; cleared before each test so the shell cannot interfere.
SETTINGS_VARIABLES = {
    "DJANGO_ENV",
    "TRUSTED_PROXY_COUNT",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "CLOUDRUN_SERVICE_URLS",
    "GOOGLE_CLOUD_PROJECT",
    "SETTINGS_NAME",
    "CONN_MAX_AGE",
    "STATIC_ROOT",
    "LOG_FORMAT",
    "READYZ_TIMEOUT",
    "AUDIT_RETENTION_DAYS",
}

PRODUCTION_PAYLOAD = b"""\
# The .env text kept in Secret Manager.
SECRET_KEY=from-the-secret-0123456789abcdefghijklmnopqrstuvwxyz
DATABASE_URL=postgres://portal:s3cr%40t@//cloudsql/demo-proj:europe-west1:portal-db/portal
CLOUDRUN_SERVICE_URLS=https://portal-123456789.europe-west1.run.app,https://portal-abcdefgh-ew.a.run.app
GS_BUCKET_NAME=demo-proj-portal-media
"""


class FakeSecretManager:
    """Stand-in for ``SecretManagerServiceClient``: secrets by resource name, no network."""

    def __init__(self) -> None:
        self.secrets: dict[str, bytes] = {}
        self.denied: set[str] = set()
        self.requests: list[str] = []

    def put(self, project: str, name: str, payload: bytes) -> None:
        self.secrets[f"projects/{project}/secrets/{name}/versions/latest"] = payload

    def client_class(self) -> type:
        fake = self

        class Client:
            def access_secret_version(
                self, request: dict[str, str] | None = None, **kwargs: Any
            ) -> SimpleNamespace:
                resource = (request or {}).get("name") or kwargs["name"]
                fake.requests.append(resource)
                if resource in fake.denied:
                    raise api_exceptions.PermissionDenied(
                        f"Permission 'secretmanager.versions.access' denied for resource "
                        f"'{resource}' (or it may not exist)."
                    )
                if resource not in fake.secrets:
                    raise api_exceptions.NotFound(
                        f"Secret [{resource}] not found or has no versions."
                    )
                return SimpleNamespace(payload=SimpleNamespace(data=fake.secrets[resource]))

        return Client


@pytest.fixture
def secret_manager(monkeypatch: pytest.MonkeyPatch) -> FakeSecretManager:
    fake = FakeSecretManager()
    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", fake.client_class())
    return fake


@pytest.fixture
def load_settings(tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    saved = dict(os.environ)
    for key in list(os.environ):
        if key in SETTINGS_VARIABLES or key.startswith(("GS_", "DATABASE_")):
            del os.environ[key]

    def load(dotenv: str | None = None, **env: str) -> dict[str, Any]:
        project = tmp_path / "project"
        (project / "portal").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "portal" / "settings.py", project / "portal" / "settings.py")
        if dotenv is not None:
            (project / ".env").write_text(dotenv)
        os.environ.update(env)
        return runpy.run_path(str(project / "portal" / "settings.py"))

    yield load
    os.environ.clear()
    os.environ.update(saved)


PRODUCTION = {"DJANGO_ENV": "production", "GOOGLE_CLOUD_PROJECT": "demo-proj"}
# A key production accepts (50+ characters, not repetitive); not a secret anywhere.
GOOD_KEY = "test-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
# What production needs when no Secret Manager is involved.
MINIMAL_PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": GOOD_KEY,
    "DATABASE_URL": "postgres://portal@db.internal:5432/portal",
}


# --- the settings source --------------------------------------------------------------


def test_production_settings_come_from_the_secret_payload(load_settings, secret_manager):
    secret_manager.put("demo-proj", "django_settings", PRODUCTION_PAYLOAD)

    s = load_settings(**PRODUCTION)

    assert secret_manager.requests == ["projects/demo-proj/secrets/django_settings/versions/latest"]
    assert s["SETTINGS_SOURCE"] == "Secret Manager secret 'django_settings' (project 'demo-proj')"
    assert s["SECRET_KEY"] == "from-the-secret-0123456789abcdefghijklmnopqrstuvwxyz"
    assert s["DEBUG"] is False
    db = s["DATABASES"]["default"]
    assert (db["HOST"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "/cloudsql/demo-proj:europe-west1:portal-db",
        "portal",
        "portal",
        "s3cr@t",
    )
    assert s["ALLOWED_HOSTS"] == [
        "portal-123456789.europe-west1.run.app",
        "portal-abcdefgh-ew.a.run.app",
    ]
    assert s["STORAGES"]["default"]["OPTIONS"]["bucket_name"] == "demo-proj-portal-media"


def test_settings_name_chooses_the_secret(load_settings, secret_manager):
    secret_manager.put("demo-proj", "portal_staging", PRODUCTION_PAYLOAD)

    s = load_settings(SETTINGS_NAME="portal_staging", **PRODUCTION)

    assert secret_manager.requests == ["projects/demo-proj/secrets/portal_staging/versions/latest"]
    assert s["SECRET_KEY"].startswith("from-the-secret")


def test_the_process_environment_wins_over_the_payload(load_settings, secret_manager):
    secret_manager.put("demo-proj", "django_settings", PRODUCTION_PAYLOAD)

    s = load_settings(CLOUDRUN_SERVICE_URLS="https://admin.example.com", **PRODUCTION)

    assert s["ALLOWED_HOSTS"] == ["admin.example.com"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://admin.example.com"]


def test_the_payload_is_read_as_a_dotenv_file(load_settings, secret_manager):
    payload = (
        b"# comment line\n"
        b"\n"
        b"SECRET_KEY='quoted # not a comment, long enough for production use'\n"
        b'DATABASE_URL="postgres://u:p@db.internal:5432/portal"\n'
        b"ALLOWED_HOSTS=a.example.com,b.example.com\n"
    )
    secret_manager.put("demo-proj", "django_settings", payload)

    s = load_settings(**PRODUCTION)

    assert s["SECRET_KEY"] == "quoted # not a comment, long enough for production use"
    assert s["DATABASES"]["default"]["HOST"] == "db.internal"
    assert s["ALLOWED_HOSTS"] == ["a.example.com", "b.example.com"]


def test_a_missing_secret_is_a_clear_error(load_settings, secret_manager):
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(**PRODUCTION)

    message = str(info.value)
    assert "'django_settings'" in message
    assert "'demo-proj'" in message
    assert "gcloud secrets create django_settings" in message
    assert "SETTINGS_NAME" in message


def test_a_denied_secret_names_the_missing_permission(load_settings, secret_manager):
    secret_manager.put("demo-proj", "django_settings", PRODUCTION_PAYLOAD)
    secret_manager.denied.add("projects/demo-proj/secrets/django_settings/versions/latest")

    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(**PRODUCTION)

    message = str(info.value)
    assert "permission denied" in message
    assert "'django_settings'" in message
    assert "secretmanager.versions.access" in message
    assert "roles/secretmanager.secretAccessor" in message
    assert "from-the-secret" not in message


def test_a_local_env_file_wins_over_secret_manager(load_settings, secret_manager):
    dotenv = "SECRET_KEY=" + GOOD_KEY + "\nDATABASE_URL=postgres://u@localhost/x\n"
    dotenv += "ALLOWED_HOSTS=localhost\n"

    s = load_settings(dotenv=dotenv, **PRODUCTION)

    assert secret_manager.requests == []
    assert s["SETTINGS_SOURCE"].startswith(".env file ")
    assert s["SECRET_KEY"] == GOOD_KEY


@pytest.mark.parametrize("django_env", ["development", "test"])
def test_secret_manager_is_never_read_outside_production(load_settings, secret_manager, django_env):
    # A developer's shell exporting GOOGLE_CLOUD_PROJECT must not pull production
    # settings (and the production DATABASE_URL) into `make run` or `make test`.
    secret_manager.put("demo-proj", "django_settings", PRODUCTION_PAYLOAD)

    s = load_settings(
        DJANGO_ENV=django_env,
        GOOGLE_CLOUD_PROJECT="demo-proj",
        DATABASE_URL="postgres://u@localhost/dev",
    )

    assert secret_manager.requests == []
    assert s["SETTINGS_SOURCE"] == "process environment"
    assert s["DATABASES"]["default"]["NAME"] == "dev"


# --- hosts, proxy, database -----------------------------------------------------------


def test_cloud_run_urls_give_allowed_hosts_and_csrf_origins(load_settings):
    s = load_settings(
        CLOUDRUN_SERVICE_URLS=(
            "https://portal-123456789.europe-west1.run.app, https://admin.example.com:8443/"
        ),
        **MINIMAL_PRODUCTION,
    )

    assert s["ALLOWED_HOSTS"] == ["portal-123456789.europe-west1.run.app", "admin.example.com"]
    assert s["CSRF_TRUSTED_ORIGINS"] == [
        "https://portal-123456789.europe-west1.run.app",
        "https://admin.example.com:8443",
    ]


def test_production_without_any_host_fails_closed(load_settings):
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS or CLOUDRUN_SERVICE_URLS"):
        load_settings(**MINIMAL_PRODUCTION)


@pytest.mark.parametrize(
    "url", ["portal.run.app", "https://", "ftp://portal.run.app", "https://x.run.app/admin"]
)
def test_a_malformed_service_url_is_refused(load_settings, url):
    with pytest.raises(ImproperlyConfigured, match="CLOUDRUN_SERVICE_URLS"):
        load_settings(CLOUDRUN_SERVICE_URLS=url, **MINIMAL_PRODUCTION)


def test_production_trusts_cloud_runs_forwarded_proto(load_settings):
    production = load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)
    assert production["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_development_does_not_trust_forwarded_proto(load_settings):
    development = load_settings(DJANGO_ENV="development", DATABASE_URL="postgres://u@h/d")
    assert "SECURE_PROXY_SSL_HEADER" not in development


def test_cloud_sql_socket_url_parses_to_host_name_and_user(load_settings):
    s = load_settings(
        DATABASE_URL=(
            "postgres://portal_app:p%40ss%2Fw0rd%3A@//cloudsql/my-proj:europe-west1:portal-db/portal"
        ),
        ALLOWED_HOSTS="x.example.com",
        DJANGO_ENV="production",
        SECRET_KEY=GOOD_KEY,
    )

    db = s["DATABASES"]["default"]
    assert db["HOST"] == "/cloudsql/my-proj:europe-west1:portal-db"
    assert db["PORT"] == ""
    assert db["NAME"] == "portal"
    assert db["USER"] == "portal_app"
    assert db["PASSWORD"] == "p@ss/w0rd:"
    assert db["ENGINE"] == "portal.db"


def test_database_password_may_come_separately(load_settings):
    s = load_settings(
        DATABASE_URL="postgres://portal_app@//cloudsql/my-proj:europe-west1:portal-db/portal",
        DATABASE_PASSWORD="rotated-password",
        ALLOWED_HOSTS="x.example.com",
        **{k: v for k, v in MINIMAL_PRODUCTION.items() if k != "DATABASE_URL"},
    )

    assert s["DATABASES"]["default"]["PASSWORD"] == "rotated-password"
    assert s["DATABASES"]["default"]["USER"] == "portal_app"


def test_pool_is_off_unless_asked_for(load_settings):
    s = load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)
    assert "pool" not in s["DATABASES"]["default"]["OPTIONS"]


def test_pool_variable_switches_on_djangos_psycopg_pool(load_settings):
    s = load_settings(
        DATABASE_POOL_MAX_SIZE="4", ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION
    )

    db = s["DATABASES"]["default"]
    assert db["OPTIONS"]["pool"] == {
        "min_size": 1,
        "max_size": 4,
        "timeout": 3.0,
        "reconnect_timeout": 0.25,
    }
    assert db["CONN_MAX_AGE"] == 0


def test_pool_with_persistent_connections_is_refused(load_settings):
    with pytest.raises(ImproperlyConfigured, match="CONN_MAX_AGE=0"):
        load_settings(
            DATABASE_POOL_MAX_SIZE="4",
            CONN_MAX_AGE="60",
            ALLOWED_HOSTS="x.example.com",
            **MINIMAL_PRODUCTION,
        )


@pytest.mark.django_db
def test_pool_options_open_a_working_pool(load_settings):
    from django.db import connection

    from portal.db.base import DatabaseWrapper

    s = load_settings(
        DATABASE_POOL_MAX_SIZE="2", ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION
    )
    pool_options = s["DATABASES"]["default"]["OPTIONS"]["pool"]
    # The test database, reached through a pool built from exactly those options.
    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": pool_options},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            assert cursor.fetchone()[0] == connection.settings_dict["NAME"]
        assert wrapper.pool is not None
        assert wrapper.pool.max_size == 2
    finally:
        wrapper.close()
        wrapper.close_pool()


def test_connect_timeout_bounds_every_connection(load_settings):
    s = load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)
    assert s["DATABASES"]["default"]["OPTIONS"]["connect_timeout"] == 3


# --- static files, media, logs --------------------------------------------------------


def test_production_serves_compressed_hashed_static_files(load_settings):
    s = load_settings(
        ALLOWED_HOSTS="x.example.com", STATIC_ROOT="/srv/static", **MINIMAL_PRODUCTION
    )

    assert (
        s["STORAGES"]["staticfiles"]["BACKEND"]
        == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )
    assert str(s["STATIC_ROOT"]) == "/srv/static"
    middleware = s["MIDDLEWARE"]
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == (
        middleware.index("django.middleware.security.SecurityMiddleware") + 1
    )


def test_tests_render_templates_without_a_manifest(load_settings):
    s = load_settings(DJANGO_ENV="test", DATABASE_URL="postgres://u@h/d")
    assert (
        s["STORAGES"]["staticfiles"]["BACKEND"]
        == "django.contrib.staticfiles.storage.StaticFilesStorage"
    )


def test_media_stay_on_the_local_filesystem_without_a_bucket(load_settings):
    s = load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)
    assert s["STORAGES"]["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_media_go_to_a_private_gcs_bucket_with_iam_signed_urls(load_settings):
    from storages.backends.gcloud import GoogleCloudStorage

    s = load_settings(
        GS_BUCKET_NAME="demo-proj-portal-media",
        GOOGLE_CLOUD_PROJECT="",
        ALLOWED_HOSTS="x.example.com",
        **MINIMAL_PRODUCTION,
    )

    media = s["STORAGES"]["default"]
    assert media["BACKEND"] == "storages.backends.gcloud.GoogleCloudStorage"
    # django-storages rejects unknown option names, so this also checks their spelling;
    # creating the storage contacts nothing.
    storage = GoogleCloudStorage(**media["OPTIONS"])
    assert storage.bucket_name == "demo-proj-portal-media"
    assert storage.iam_sign_blob is True
    assert storage.querystring_auth is True
    assert storage.default_acl is None
    assert storage.file_overwrite is False
    assert storage.expiration == timedelta(minutes=15)


def test_production_logs_are_json(load_settings):
    s = load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)

    assert s["LOGGING"]["formatters"]["json"]["()"] == "portal.jsonlog.CloudLoggingFormatter"
    assert s["LOGGING"]["handlers"]["console"]["formatter"] == "json"


def test_an_unknown_log_format_is_refused(load_settings):
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        load_settings(LOG_FORMAT="xml", ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)


# --- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["short", "k" * 64, "abab" * 20], ids=["short", "one-character", "four-characters"]
)
def test_production_refuses_a_weak_secret_key(load_settings, key):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be at least 50"):
        load_settings(ALLOWED_HOSTS="x.example.com", **{**MINIMAL_PRODUCTION, "SECRET_KEY": key})


def test_production_refuses_debug(load_settings):
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be off"):
        load_settings(ALLOWED_HOSTS="x.example.com", DEBUG="1", **MINIMAL_PRODUCTION)


@pytest.mark.parametrize("count", ["-1", "6", "two", "1.5"])
def test_an_impossible_proxy_count_is_refused_at_start(load_settings, count):
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_COUNT"):
        load_settings(
            ALLOWED_HOSTS="x.example.com", TRUSTED_PROXY_COUNT=count, **MINIMAL_PRODUCTION
        )


def test_production_needs_at_least_cloud_runs_proxy(load_settings):
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_COUNT=0 in production"):
        load_settings(ALLOWED_HOSTS="x.example.com", TRUSTED_PROXY_COUNT="0", **MINIMAL_PRODUCTION)
    behind_balancer = load_settings(
        ALLOWED_HOSTS="x.example.com", TRUSTED_PROXY_COUNT="2", **MINIMAL_PRODUCTION
    )
    assert behind_balancer["TRUSTED_PROXY_COUNT"] == 2


@pytest.mark.parametrize("days", ["0", "-5", "a year", "1.5"])
def test_an_impossible_audit_retention_is_refused_at_start(load_settings, days):
    with pytest.raises(ImproperlyConfigured, match="AUDIT_RETENTION_DAYS"):
        load_settings(
            ALLOWED_HOSTS="x.example.com", AUDIT_RETENTION_DAYS=days, **MINIMAL_PRODUCTION
        )


def test_the_audit_retention_is_kept_forever_unless_set(load_settings):
    assert (
        load_settings(ALLOWED_HOSTS="x.example.com", **MINIMAL_PRODUCTION)["AUDIT_RETENTION_DAYS"]
        is None
    )
    assert (
        load_settings(
            ALLOWED_HOSTS="x.example.com", AUDIT_RETENTION_DAYS="400", **MINIMAL_PRODUCTION
        )["AUDIT_RETENTION_DAYS"]
        == 400
    )
