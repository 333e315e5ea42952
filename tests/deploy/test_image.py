"""The image's recipe (Dockerfile, .dockerignore) and gunicorn's settings.

No Docker engine here: hadolint lints the Dockerfile (`make lint`), the production smoke
test runs its collectstatic step and its CMD, and these tests pin what must hold of the
files themselves.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType

import pytest
from gunicorn.config import make_settings

from tests.deploy import dockerfile

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = dockerfile.final_stage()


def _ignored(path: str) -> bool:
    """Docker's rule, for the kinds of pattern .dockerignore uses: a pattern excludes a
    path when it matches the path or one of its parent directories (from the context's
    root); a leading ``**/`` matches at any depth."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "re-inclusions are not handled here"
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern.removeprefix("**/")) for part in parts):
                return True
        elif any(fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


@pytest.mark.parametrize(
    "path",
    [
        ".pgdata/cluster/PG_VERSION",
        ".pgdata15/password",
        ".venv/bin/python",
        ".env",
        ".env.production",
        "tests/deploy/test_production_smoke.py",
        "staticfiles/admin/css/base.css",
        ".git",
        "portal/__pycache__/settings.cpython-311.pyc",
        "demo/management/commands/seed_demo.py",
        "demo/corpus/exchanges.txt",
    ],
)
def test_local_state_secrets_and_tests_stay_out_of_the_image(path):
    assert _ignored(path)


def test_production_runs_without_the_demo_app():
    """The image leaves demo/ out, so production settings must neither install nor import it."""
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        **{k: v for k, v in dockerfile.image_env().items() if k != "PATH"},
        "SECRET_KEY": "deploy-image-test-" + "x" * 40,
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/unused",  # never connected to
    }
    code = (
        "import sys, django; django.setup(); import portal.urls, portal.wsgi; "
        "from django.conf import settings; "
        "print('demo' in settings.INSTALLED_APPS, "
        "any(m.split('.')[0] == 'demo' for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "path",
    [
        "manage.py",
        "gunicorn.conf.py",
        "requirements.txt",
        "portal/settings.py",
        "portal/management/commands/migrate.py",
        "accounts/migrations/0001_initial.py",
    ],
)
def test_the_application_goes_into_the_image(path):
    assert (REPO / path).exists()
    assert not _ignored(path)


def test_the_image_runs_gunicorn_as_pid_1_with_the_config_file():
    # Exec form (a JSON array): no shell in between to swallow SIGTERM.
    assert dockerfile.cmd() == ["gunicorn", "--config", "gunicorn.conf.py", "portal.wsgi"]


def test_the_image_runs_as_an_unprivileged_user():
    users = [args for keyword, args in DOCKERFILE if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000


def test_dependencies_come_from_requirements_as_wheels_without_a_cache():
    installs = [
        args
        for keyword, args in dockerfile.instructions()
        if keyword == "RUN" and "pip install" in args
    ]
    assert len(installs) == 1
    assert "--no-cache-dir" in installs[0]
    assert "--only-binary=:all:" in installs[0]
    assert "-r /tmp/requirements.txt" in installs[0]


def test_static_files_are_collected_at_build_with_production_settings():
    step = dockerfile.run_step("collectstatic")
    assert step.argv == ["python", "manage.py", "collectstatic", "--no-input"]
    assert step.env["DJANGO_ENV"] == "production"
    # The placeholders needed to load production settings live on the RUN line only.
    assert dockerfile.image_env()["DJANGO_ENV"] == "production"
    assert "SECRET_KEY" not in dockerfile.image_env()
    assert "DATABASE_URL" not in dockerfile.image_env()


@pytest.fixture
def gunicorn_conf(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


def test_gunicorn_listens_on_cloud_runs_port(gunicorn_conf):
    assert gunicorn_conf["bind"] == ["0.0.0.0:9123"]


def test_gunicorn_leaves_timeouts_to_cloud_run_and_stops_before_the_hard_kill(gunicorn_conf):
    # The database bounds each request (docs/deploy.md#bounds); gunicorn's timeout only
    # restarts a worker whose main loop hung, well inside Cloud Run's request timeout.
    match = re.search(r"--timeout=(\d+)", (REPO / "docs" / "deploy.md").read_text())
    assert match, "docs/deploy.md deploys the service with --timeout=<seconds>"
    assert 0 < gunicorn_conf["timeout"] < int(match.group(1))
    # Cloud Run sends SIGKILL 10 s after SIGTERM.
    assert 0 < gunicorn_conf["graceful_timeout"] < 10


def test_gunicorn_runs_a_worker_per_cpu_with_threads(gunicorn_conf):
    assert gunicorn_conf["workers"] == gunicorn_conf["available_cpus"]()
    assert 1 <= gunicorn_conf["workers"] <= len(os.sched_getaffinity(0))
    assert gunicorn_conf["worker_class"] == "gthread"
    assert gunicorn_conf["threads"] >= 2


def test_gunicorn_logs_json_access_lines_to_stdout(gunicorn_conf):
    assert gunicorn_conf["accesslog"] == "-"
    access = gunicorn_conf["logconfig_dict"]["loggers"]["gunicorn.access"]
    handler = gunicorn_conf["logconfig_dict"]["handlers"][access["handlers"][0]]
    assert handler["stream"] == "ext://sys.stdout"
    formatter = gunicorn_conf["logconfig_dict"]["formatters"][handler["formatter"]]
    assert formatter["()"] == "portal.jsonlog.CloudLoggingFormatter"


def test_every_name_in_the_config_file_is_a_gunicorn_setting(gunicorn_conf):
    # gunicorn ignores unknown names, so a typo would silently fall back to a default.
    # Every setting is lower case: imported modules and UPPER_CASE constants are the
    # file's own helpers, as are the functions named here.
    settings = set(make_settings())
    helpers = {"available_cpus", "gunicorn_logconfig", "Path"}
    names = {
        n
        for n, value in gunicorn_conf.items()
        if not n.startswith("_") and not n.isupper() and not isinstance(value, ModuleType)
    } - helpers
    assert names <= settings, names - settings
