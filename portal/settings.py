"""Settings for the portal, read from the environment (django-environ).

One switch, ``DJANGO_ENV``: ``development`` (default), ``test`` or ``production``.
Production fails closed: no default SECRET_KEY, DEBUG off, ALLOWED_HOSTS and
DATABASE_URL required. Outside production, a missing DATABASE_URL means the
project's own embedded PostgreSQL (``devdb``), started on demand.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.limits import is_web_process as _web_process
from portal.limits import web_options
from portal.settings_secrets import load_settings_env

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Settings source: a local .env file wins; else, in production with GOOGLE_CLOUD_PROJECT
# set, the .env payload of the Secret Manager secret SETTINGS_NAME
# (portal/settings_secrets.py). The process environment still overrides either
# (read_env never overwrites a variable).
SETTINGS_SOURCE = load_settings_env(env, BASE_DIR / ".env")

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}"
    )
PRODUCTION = DJANGO_ENV == "production"


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production")
    return value


# CLOUDRUN_SERVICE_URLS: the service's URLs, comma-separated (a Cloud Run service has
# several: https://NAME-PROJECTNUMBER.REGION.run.app and the older hashed one, plus any
# custom domain). Hosts join ALLOWED_HOSTS, origins join CSRF_TRUSTED_ORIGINS.
def _service_hosts_and_origins(urls: list[str]) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    origins: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname or parts.path.strip("/"):
            raise ImproperlyConfigured(
                f"CLOUDRUN_SERVICE_URLS: {url!r} is not a service URL like "
                "https://portal-123456789.europe-west1.run.app"
            )
        hosts.append(parts.hostname)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return hosts, origins


CLOUDRUN_SERVICE_URLS = env.list("CLOUDRUN_SERVICE_URLS", default=[])
_service_hosts, _service_origins = _service_hosts_and_origins(CLOUDRUN_SERVICE_URLS)

if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    # Refused rather than warned about (check --deploy only warns): a short or
    # repetitive key makes sessions and password-reset tokens forgeable, and DEBUG
    # shows settings and tracebacks to anyone who triggers an error.
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY must be at least 50 characters with at least 5 different ones "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')"
        )
    DEBUG = env.bool("DEBUG", default=False)
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) + _service_hosts
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS or CLOUDRUN_SERVICE_URLS must be set when DJANGO_ENV=production"
        )
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS may not contain '*' in production")
else:
    # A fixed development key: sessions survive restarts of `make run`. Never used in
    # production, where SECRET_KEY is required.
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-key-do-not-use-in-production")
    DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
    ALLOWED_HOSTS = (
        env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"]) + _service_hosts
    )

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[]) + _service_origins

# Order matters: portal's templates override the admin's (base_site, nav_sidebar, ...),
# so it comes before django.contrib.admin (PortalAdminConfig installs the portal's
# AdminSite as admin.site). The demo data app exists outside production only.
INSTALLED_APPS = [
    "portal.apps.PortalConfig",
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "accounts",
    "core",
    "analytics",
    "audit",
    "diagnostics",
    "dbroles",
    *([] if PRODUCTION else ["demo"]),
]

MIDDLEWARE = [
    # /healthz and /readyz answer before host validation and the HTTPS redirect: Cloud
    # Run's probes call the container directly over plain HTTP, without the service's Host.
    "portal.health.HealthCheckMiddleware",
    # Request id and client IP first, so every later layer (the lockout included) has them.
    "portal.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language from the django_language cookie or Accept-Language (docs/configuration.md).
    "django.middleware.locale.LocaleMiddleware",
    # The idle timeout without a session write per request (portal/admin/sessions.py).
    "portal.admin.sessions.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in user's own time zone, for every time the page shows.
    "accounts.timezones.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # django-axes last, as its documentation requires.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% url %} with each distinct reversal done once per process.
            "builtins": ["portal.templatetags.portal_urls"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database. Every app table is schema-qualified ('core"."projects'); the schema-aware backend
# in portal/db corrects what the stock backend gets wrong for such tables.
DATABASE_ENGINE = "portal.db"

# Lock-safe migrations (portal/db/locks.py; docs/deploy.md "Live migrations"), seconds.
MIGRATION_LOCK_TIMEOUT = env.float("MIGRATION_LOCK_TIMEOUT", default=2.0)
MIGRATION_WEAK_LOCK_TIMEOUT = env.float("MIGRATION_WEAK_LOCK_TIMEOUT", default=300.0)
MIGRATION_STATEMENT_TIMEOUT = env.float("MIGRATION_STATEMENT_TIMEOUT", default=5.0)
MIGRATION_LOCK_RETRIES = env.int("MIGRATION_LOCK_RETRIES", default=5)
MIGRATION_RETRY_BACKOFF = env.float("MIGRATION_RETRY_BACKOFF", default=1.0)

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
elif PRODUCTION:
    raise ImproperlyConfigured(
        "DATABASE_URL must be set when DJANGO_ENV=production "
        "(e.g. postgres://USER:PASSWORD@//cloudsql/PROJECT:REGION:INSTANCE/DBNAME)"
    )
else:
    # Outside production, with no DATABASE_URL, importing the settings starts (or finds)
    # the project's embedded cluster. Deliberate: every manage.py command, the test
    # runner and `make run` then work on a fresh clone with nothing to configure, and
    # the start is a few milliseconds when the cluster is already up (a lock file
    # makes concurrent starts yield one server). Production never reaches this.
    # The connection is the declared application role (dbroles/declaration.py), as the
    # web service's is in production; DATABASE_ROLE=migrator selects the role that owns
    # the schemas, for the processes that migrate (`make run` runs migrate so). The
    # superuser is never the portal's: `python -m devdb psql` is there for that.
    import devdb

    DATABASE_ROLE = env.str("DATABASE_ROLE", default="application")
    if DATABASE_ROLE not in devdb.ROLE_KEYS:
        raise ImproperlyConfigured(
            f"DATABASE_ROLE must be one of {', '.join(devdb.ROLE_KEYS)}, not {DATABASE_ROLE!r}"
        )
    try:
        _devdb = devdb.ensure_running()
    except devdb.DevDBError as exc:
        raise ImproperlyConfigured(f"embedded PostgreSQL: {exc}") from exc
    DATABASES = {"default": environ.Env.db_url_config(_devdb.url(role=DATABASE_ROLE))}

DATABASES["default"]["ENGINE"] = DATABASE_ENGINE
# Production keeps each thread's connection open (with a health check before reuse):
# opening a PostgreSQL connection per request costs a third of the throughput
# (docs/benchmarks.md), and a dead connection is replaced on the next request. The pool
# (DATABASE_POOL_MAX_SIZE below) is the alternative; it needs CONN_MAX_AGE=0.
DATABASES["default"].setdefault(
    "CONN_MAX_AGE",
    env.int(
        "CONN_MAX_AGE",
        default=60 if PRODUCTION and not env.int("DATABASE_POOL_MAX_SIZE", default=0) else 0,
    ),
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str(
    "TEST_DATABASE_NAME", default="test_portal"
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
# Each app's locale/ folder is found on its own; portal/locale holds the admin framework's
# strings (portal is an app too), so no LOCALE_PATHS is needed.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Date, time and number formats per language (portal/formats/<lang>/formats.py): every time
# with its zone abbreviation, and numbers with the language's separators.
FORMAT_MODULE_PATH = ["portal.formats"]
# Off: with it, every integer a template prints is grouped, ids and pids in form values
# and attributes too ("8,670"). Figures people read are grouped explicitly
# (number_format(..., force_grouping=True)); decimals follow the language either way.
USE_THOUSAND_SEPARATOR = False
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION
LANGUAGE_COOKIE_HTTPONLY = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "admin:login"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every successful login at INFO; failures and lockouts (WARNING)
    # are enough, and are in audit.security_events anyway.
    # A rejected admin lookup (?field__secret=...) is a client's bad request: one
    # WARNING line, not an ERROR with a traceback that pages someone.
    "filters": {
        "as_warning": {"()": "portal.jsonlog.AsWarningWithoutTraceback"},
        "once_per_interval": {"()": "portal.jsonlog.OncePerInterval"},
    },
    "loggers": {
        "axes": {"level": "WARNING"},
        # The pool warns at each failed connection attempt: once per interval is enough.
        "psycopg.pool": {"filters": ["once_per_interval"]},
        "django.security.DisallowedModelAdminLookup": {"filters": ["as_warning"]},
    },
}

# Audit trail, login protection and security headers. Everything production-only is
# keyed on PRODUCTION; each value can be overridden from the environment.
# `manage.py check --deploy` with DJANGO_ENV=production reports nothing.

# Proxies in front of the portal that append to X-Forwarded-For (Cloud Run: 1). The
# client is the entry that many places from the right; entries left of it are
# client-controlled. 0 = use REMOTE_ADDR.
# Behind an external HTTPS load balancer (IAP) in front of Cloud Run: 2. Validated here,
# because a wrong count silently makes every client share the balancer's address
# (too low) or lets clients choose their own (too high).
MAX_TRUSTED_PROXY_COUNT = 5
try:
    TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if PRODUCTION else 0)
except ValueError as exc:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXY_COUNT must be a whole number of proxies, not "
        f"{os.environ.get('TRUSTED_PROXY_COUNT')!r}"
    ) from exc
if not 0 <= TRUSTED_PROXY_COUNT <= MAX_TRUSTED_PROXY_COUNT:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXY_COUNT must be between 0 and {MAX_TRUSTED_PROXY_COUNT} "
        f"(Cloud Run alone: 1; behind an external HTTPS load balancer: 2), "
        f"not {TRUSTED_PROXY_COUNT}"
    )
if PRODUCTION and TRUSTED_PROXY_COUNT == 0:
    raise ImproperlyConfigured(
        "TRUSTED_PROXY_COUNT=0 in production: on Cloud Run every request comes through at "
        "least Google's front end (1; behind an external HTTPS load balancer: 2)"
    )

# Brute-force protection (django-axes, database handler; its tables are in public):
# LOGIN_FAILURE_LIMIT failed logins for one email from one IP lock that pair for
# LOGIN_LOCKOUT_MINUTES after the last failure. Other IPs can still log in to the
# account, so an attacker cannot lock a user out everywhere.
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.LoginCeilingBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# Wider limits (accounts/lockout.py), counted over the same cool-off window: failures
# from one IP whatever the email, failures for one email whatever the IP, and failures
# per minute across everything. Over one, every attempt is refused (429) until the
# window has passed; the per-account limit is higher than the pair's so that locking a
# user out everywhere takes many addresses and still only lasts the window.
LOGIN_IP_FAILURE_LIMIT = env.int("LOGIN_IP_FAILURE_LIMIT", default=20)
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=20)
LOGIN_GLOBAL_FAILURES_PER_MINUTE = env.int("LOGIN_GLOBAL_FAILURES_PER_MINUTE", default=300)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"  # the admin login form's field (holds the email)
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_CLIENT_IP_CALLABLE = "portal.request_context.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # audit.security_events is the login history
AXES_ENABLE_ADMIN = False  # accounts/admin.py lists locked-out logins on the portal's base
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]
AXES_VERBOSE = False

# Content-Security-Policy: no inline or eval'd script anywhere (the admin has none);
# a page that truly needs an inline script uses the per-request nonce
# (request.csp_nonce). Data for scripts goes through json_script (not executed).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# *.run.app is under the .app TLD, which browsers already preload as HTTPS-only.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Health probes reach the container over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the admin reads the token from its forms, never the cookie
SESSION_COOKIE_SAMESITE = "Lax"
# Sessions end when the browser closes, and after SESSION_IDLE_MINUTES without a
# request (requests push the expiry forward: portal/admin/sessions.py).
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_MINUTES", default=30) * 60
# Production: Cloud Run, Cloud SQL, media, logs, health.
# Cloud Run terminates TLS and sets X-Forwarded-Proto on every request it forwards
# (replacing any value the client sent), so it tells whether the client used https.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

GOOGLE_CLOUD_PROJECT = env.str("GOOGLE_CLOUD_PROJECT", default="")

# The database password may come on its own (a Secret Manager secret mounted as an
# environment variable), so it can be rotated without rewriting the settings secret.
if env.str("DATABASE_PASSWORD", default=""):
    DATABASES["default"]["PASSWORD"] = env.str("DATABASE_PASSWORD")

# Never wait minutes for an unreachable server (libpq's default is no limit; libpq
# counts whole seconds and treats anything below 2 as 2). It covers the whole start-up,
# so a server that accepts TCP and never answers costs a request this long.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
)

# The bounds of a web request's database work (portal/limits.py, docs/deploy.md). Under
# gunicorn every connection starts with these limits; management commands never get them.
WEB_STATEMENT_TIMEOUT_MS = env.int("WEB_STATEMENT_TIMEOUT_MS", default=5000)
WEB_LOCK_TIMEOUT_MS = env.int("WEB_LOCK_TIMEOUT_MS", default=1000)
WEB_IDLE_IN_TRANSACTION_TIMEOUT_MS = env.int("WEB_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=10000)
# One panel of the dashboard or of a change page: it shows "unavailable: <reason>" past these.
PANEL_STATEMENT_TIMEOUT_MS = env.int("PANEL_STATEMENT_TIMEOUT_MS", default=2000)
PANEL_LOCK_TIMEOUT_MS = env.int("PANEL_LOCK_TIMEOUT_MS", default=300)
# The row of a change page (read, and locked for the update on a save).
CHANGE_LOCK_TIMEOUT_MS = env.int("CHANGE_LOCK_TIMEOUT_MS", default=3000)
if _web_process():
    _options = DATABASES["default"]["OPTIONS"]
    _options["options"] = " ".join(
        filter(
            None,
            [
                _options.get("options", ""),
                web_options(
                    WEB_STATEMENT_TIMEOUT_MS,
                    WEB_LOCK_TIMEOUT_MS,
                    WEB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
                ),
            ],
        )
    )

# Django's psycopg connection pool, per process, switched on by its own variable: the
# pool options cannot be written in a DATABASE_URL. Django refuses a pool together with
# persistent connections, so CONN_MAX_AGE must stay 0.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE:
    if DATABASES["default"]["CONN_MAX_AGE"] != 0:
        raise ImproperlyConfigured(
            "DATABASE_POOL_MAX_SIZE needs CONN_MAX_AGE=0: the pool replaces persistent "
            f"connections (CONN_MAX_AGE is {DATABASES['default']['CONN_MAX_AGE']})"
        )
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        # Seconds a request waits for a free connection before it answers 503
        # "database busy" (portal/outage.py).
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
        # How long the pool retries a lost connection before it gives up (a request
        # that waits makes it try again: portal/db/pool.py). Short, so that its first
        # retry comes a quarter of a second after the loss instead of its own 1 s
        # backoff, and after an outage the pool is back within a second of the database.
        "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=0.25),
    }

# Uploaded media (exports, reports) on a private GCS bucket when GS_BUCKET_NAME is set.
# Private bucket: every URL is a short-lived signed URL. On Cloud Run there is no key
# file, so signing goes through the IAM signBlob API (GS_IAM_SIGN_BLOB; the service
# account needs roles/iam.serviceAccountTokenCreator on itself). No default ACL: buckets
# with uniform bucket-level access reject per-object ACLs.
GS_BUCKET_NAME = env.str("GS_BUCKET_NAME", default="")
if GS_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.gcloud.GoogleCloudStorage",
        "OPTIONS": {
            "bucket_name": GS_BUCKET_NAME,
            "project_id": GOOGLE_CLOUD_PROJECT or None,
            "querystring_auth": True,
            "iam_sign_blob": env.bool("GS_IAM_SIGN_BLOB", default=True),
            "sa_email": env.str("GS_SA_EMAIL", default="") or None,
            "expiration": timedelta(seconds=env.int("GS_EXPIRATION", default=900)),
            # Two exports with the same name must not overwrite each other.
            "file_overwrite": False,
        },
    }

# Audit rows older than this many days may be archived (manage.py archive_audit,
# docs/audit-and-security.md); unset: kept forever.
_retention = env.str("AUDIT_RETENTION_DAYS", default="").strip()
if _retention and not (_retention.isdigit() and int(_retention) >= 1):
    raise ImproperlyConfigured(
        f"AUDIT_RETENTION_DAYS must be a whole number of days, at least 1, not {_retention!r}"
    )
AUDIT_RETENTION_DAYS: int | None = int(_retention) if _retention else None

# JSON lines Cloud Logging understands (severity, trace id per request); text locally.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
if LOG_FORMAT == "json":
    LOGGING["formatters"] = {
        "json": {"()": "portal.jsonlog.CloudLoggingFormatter", "project": GOOGLE_CLOUD_PROJECT}
    }
    LOGGING["handlers"]["console"].update(formatter="json", stream="ext://sys.stdout")
elif LOG_FORMAT != "text":
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")

# Seconds /readyz waits for the database (connect, locks, query) before answering 503.
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=3.0)
# A database outage is logged once per this many seconds, not once per request.
OUTAGE_LOG_INTERVAL_SECONDS = env.int("OUTAGE_LOG_INTERVAL_SECONDS", default=60)
# Database diagnostics: the pages (/admin/diagnostics/) can inspect several databases. Every
# DATABASE_URL_<NAME> variable adds a database alias <name> (lower case), e.g.
# DATABASE_URL_MONITOR for the same database through a role that holds only pg_monitor,
# or DATABASE_URL_REPLICA for a read replica. DIAGNOSTICS_DATABASES (comma-separated
# aliases) limits and orders the choice; by default every alias is offered.
for _key, _url in sorted(env.ENVIRON.items()):
    if _key.startswith("DATABASE_URL_") and _url and len(_key) > len("DATABASE_URL_"):
        _alias = _key.removeprefix("DATABASE_URL_").lower()
        if _alias in DATABASES:
            raise ImproperlyConfigured(f"{_key} names alias {_alias!r}, which already exists")
        DATABASES[_alias] = {
            **env.db_url_config(_url),
            "ENGINE": DATABASE_ENGINE,
            "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=0),
            "CONN_HEALTH_CHECKS": True,
        }

DIAGNOSTICS_DATABASES = env.list("DIAGNOSTICS_DATABASES", default=list(DATABASES))
for _alias in DIAGNOSTICS_DATABASES:
    if _alias not in DATABASES:
        raise ImproperlyConfigured(
            f"DIAGNOSTICS_DATABASES names {_alias!r}, which is not a database alias "
            f"(known: {', '.join(DATABASES)})"
        )
# The portal's own sessions are marked on the Activity page by this application_name.
PORTAL_APPLICATION_NAME = env.str("PORTAL_APPLICATION_NAME", default="portal")
for _db in DATABASES.values():
    _db.setdefault("OPTIONS", {}).setdefault("application_name", PORTAL_APPLICATION_NAME)
# Session cost estimates (core/pricing.py): USD per million tokens, per model name. A
# JSON object in PORTAL_MODEL_PRICES replaces the whole table; models not in it show
# no cost. Blended prices: the gateway records one token count per execution.
PORTAL_MODEL_PRICES = env.json(
    "PORTAL_MODEL_PRICES",
    default={
        "gpt-5-codex": 3.0,
        "gpt-5": 3.0,
        "gpt-4.1": 4.0,
        "o4-mini": 2.0,
        "claude-sonnet-4.5": 6.0,
        "gemini-2.5-pro": 3.5,
    },
)
if not isinstance(PORTAL_MODEL_PRICES, dict) or not all(
    isinstance(v, int | float) and v >= 0 for v in PORTAL_MODEL_PRICES.values()
):
    raise ImproperlyConfigured(
        "PORTAL_MODEL_PRICES must be a JSON object of model name -> non-negative number "
        "(USD per million tokens)"
    )
# Every diagnostic query runs with these local limits (milliseconds).
DIAGNOSTICS_STATEMENT_TIMEOUT_MS = env.int("DIAGNOSTICS_STATEMENT_TIMEOUT_MS", default=5000)
DIAGNOSTICS_LOCK_TIMEOUT_MS = env.int("DIAGNOSTICS_LOCK_TIMEOUT_MS", default=500)
# manage.py snapshot_stats: at most one snapshot per database per interval; history kept
# for the retention period (days).
DIAGNOSTICS_SNAPSHOT_MIN_INTERVAL_SECONDS = env.int(
    "DIAGNOSTICS_SNAPSHOT_MIN_INTERVAL_SECONDS", default=240
)
DIAGNOSTICS_SNAPSHOT_RETENTION_DAYS = env.int("DIAGNOSTICS_SNAPSHOT_RETENTION_DAYS", default=30)

# Sessions: the idle timeout without a session write per request. The session row is
# re-saved when its expiry is SESSION_REFRESH_SECONDS old, so a session ends between
# SESSION_IDLE_MINUTES and that plus SESSION_REFRESH_SECONDS after the last request.
SESSION_ENGINE = "portal.admin.sessions"
SESSION_REFRESH_SECONDS = env.int("SESSION_REFRESH_SECONDS", default=60)
