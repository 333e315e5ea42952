"""Shared fixtures. Every test runs against real PostgreSQL (the embedded cluster)."""

import os

import pytest
from hypothesis import settings

# Property tests explore new examples on every developer run; in CI (.ci/run sets CI)
# the examples are derived from each test's name, so a CI run is reproducible and a red
# build names an input that fails again locally with CI=true.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Database diagnostics: roles, second connections and extra aliases.
pytest_plugins = ["tests.diagnostics.support"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """The dashboard caches per-hour totals; each test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield
