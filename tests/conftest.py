"""Shared fixtures. Every test runs against real PostgreSQL (the embedded cluster)."""

import pytest

# Database diagnostics: roles, second connections and extra aliases.
pytest_plugins = ["tests.diagnostics.support"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """The dashboard caches per-hour totals; each test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield
