"""Real-browser tests: Playwright for Python driving Debian's Chromium.

Playwright's own browser download does not work on these machines, so the tests
launch /usr/bin/chromium (installed by `make test`, see the Makefile's browser-deps).
Each test saves screenshots under test-output/screenshots/.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests
# make between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PASSWORD = "browser-test-Pa55word!"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    }


@pytest.fixture
def screenshot(page, request):
    """Call ``screenshot("step")`` to save test-output/screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def superuser(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser(
        email="browser-admin@example.com", password=PASSWORD
    )


def log_in(page, live_server, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")


@pytest.fixture
def admin_page(page, live_server, superuser):
    """A browser page logged in as a superuser, on the admin index."""
    log_in(page, live_server, superuser.email)
    page.wait_for_url(f"{live_server.url}/admin/")
    return page
