"""The demo commands never run against production: the demo app is not installed there,
and where it is installed anyway they stop with a one-line reason and a non-zero exit,
before touching the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import ManagementUtility

REPO = Path(__file__).resolve().parent.parent.parent
COMMANDS = ["seed_demo", "ensure_demo_admin"]


# No django_db mark: pytest-django fails the test if the command opens a connection.
@pytest.mark.parametrize("command", COMMANDS)
def test_it_refuses_with_one_line_and_a_non_zero_exit(command, settings, capsys):
    settings.PRODUCTION = True
    argv = ["manage.py", command]

    with pytest.raises(SystemExit) as excinfo:
        ManagementUtility(argv).fetch_command(command).run_from_argv(argv)

    assert excinfo.value.code != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"CommandError: {command} refuses to run with DJANGO_ENV=production\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_production_settings_do_not_install_the_demo_app(command):
    # What the image's collectstatic step has: settings that load, a database that is
    # never reached (port 1 refuses at once).
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "DJANGO_ENV": "production",
        "SECRET_KEY": "production-refusal-test-" + "x" * 40,
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/unused",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == f"Unknown command: '{command}'"
