"""Where the settings' secrets come from: a local ``.env`` file, or Secret Manager.

The pattern of Google's Django-on-Cloud-Run sample, made safer:

1. A ``.env`` file in the project root, when there is one (development, or a
   hand-run management command).
2. Otherwise, in production with ``GOOGLE_CLOUD_PROJECT`` set: the payload of the
   Secret Manager secret named by ``SETTINGS_NAME`` (default ``django_settings``),
   latest version, which is the text of a ``.env`` file.
3. Otherwise only the process environment.

In every case the process environment wins over the file or payload (django-environ's
``read_env`` never overwrites a variable that is already set), so Cloud Run's
``--set-env-vars``/``--set-secrets`` can override single values.

Secret Manager is consulted only when ``DJANGO_ENV=production`` is in the process
environment (the image sets it). A developer's shell often exports
``GOOGLE_CLOUD_PROJECT`` for gcloud; without this rule ``make run`` or ``make test``
would pull the production ``DATABASE_URL`` into a development process.

Errors name the secret, the project and what to do (create it, or grant
``roles/secretmanager.secretAccessor``), and never show the payload.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

DEFAULT_SETTINGS_NAME = "django_settings"
# A settings read happens once per process start; fail within this many seconds rather
# than hang the container's start-up on a network problem.
ACCESS_TIMEOUT = 30.0


class SecretSettingsError(ImproperlyConfigured):
    """The settings secret could not be read; the message says which one and why."""


def load_settings_env(env: environ.Env, env_file: Path) -> str:
    """Put the first available settings source into ``os.environ``; return what it was.

    Variables already in the process environment are never overwritten.
    """
    if env_file.is_file():
        env.read_env(env_file)
        return f".env file {env_file}"
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
    if not project or os.environ.get("DJANGO_ENV") != "production":
        return "process environment"
    name = os.environ.get("SETTINGS_NAME", "").strip() or DEFAULT_SETTINGS_NAME
    env.read_env(io.StringIO(read_secret(project, name)))
    return f"Secret Manager secret {name!r} (project {project!r})"


def read_secret(project: str, name: str, version: str = "latest") -> str:
    """The UTF-8 payload of ``projects/<project>/secrets/<name>/versions/<version>``."""
    # Imported here: the gRPC stack costs start-up time and is only needed in production.
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import secretmanager

    resource = f"projects/{project}/secrets/{name}/versions/{version}"
    where = f"Secret Manager secret {name!r} (version {version}) in project {project!r}"
    try:
        client = secretmanager.SecretManagerServiceClient()
        response = client.access_secret_version(request={"name": resource}, timeout=ACCESS_TIMEOUT)
    except api_exceptions.NotFound:
        raise SecretSettingsError(
            f"{where} does not exist or has no enabled version: create it with "
            f"`gcloud secrets create {name} --data-file=<your .env>` (or add a version), "
            "or set SETTINGS_NAME to the secret that holds the settings"
        ) from None
    except api_exceptions.PermissionDenied:
        raise SecretSettingsError(
            f"permission denied reading {where}: the service account running the portal "
            "needs the permission secretmanager.versions.access on it, e.g. "
            f"`gcloud secrets add-iam-policy-binding {name} --member=serviceAccount:<SA> "
            "--role=roles/secretmanager.secretAccessor`"
        ) from None
    except api_exceptions.FailedPrecondition:
        raise SecretSettingsError(
            f"{where} is disabled or destroyed: enable a version or add a new one"
        ) from None
    except auth_exceptions.DefaultCredentialsError:
        raise SecretSettingsError(
            f"no Google credentials to read {where}: on Cloud Run the service account "
            "provides them; elsewhere run `gcloud auth application-default login`"
        ) from None
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise SecretSettingsError(f"could not read {where}: {type(exc).__name__}: {exc}") from None
    try:
        return response.payload.data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretSettingsError(
            f"{where} is not UTF-8 text; it must hold the text of a .env file"
        ) from None
