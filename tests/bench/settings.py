"""Settings for ``make bench``: the project's settings on the bench's own database.

The bench imports this only after pointing the embedded cluster at the database
``portal_bench`` (see ``tests/bench/admin.py``), so the dev data is never touched.
"""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
# Hashing cost is not what is measured.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
