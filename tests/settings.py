"""Settings for the test suite: the project's settings plus test-only apps."""

from portal.settings import *  # noqa: F403
from portal.settings import INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "tests.db.chainapp",
    "tests.db.lockapp",
    "tests.metabase.metabaseapp",
]

# Hashing cost is not under test; MD5 keeps user creation fast in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test runner's flush must empty the append-only audit tables (tests/db explains).
DATABASES["default"]["ENGINE"] = "tests.db"  # noqa: F405
