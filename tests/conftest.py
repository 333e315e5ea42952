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


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """The test database as a deployment's: made by the superuser with the declared
    roles (tests/db/roles.py), migrated by the migrator, used by the application role.

    pytest-django's own fixture, with the creation done beforehand and ``migrate`` run
    on the migrator's connection; Django then finds the database made (``keepdb``).
    """
    from django.db import connections
    from django.test.utils import setup_databases
    from pytest_django.fixtures import _get_databases_for_setup

    from tests.db import roles

    keep = django_db_keepdb and not django_db_createdb
    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    cfg = connections["default"].settings_dict
    name = cfg["TEST"].get("NAME") or "test_" + cfg["NAME"]
    with django_db_blocker.unblock():
        roles.recreate_test_database(name, keep=keep)
        with roles.default_as(roles.MIGRATOR):
            setup_databases(
                verbosity=request.config.option.verbose,
                interactive=False,
                aliases=aliases,  # type: ignore[arg-type]  # a set, as pytest-django passes
                serialized_aliases=serialized_aliases,
                keepdb=True,
            )
        roles.grant_test_apps()
    yield
    if not keep:
        with django_db_blocker.unblock():
            for conn in connections.all():
                conn.close()
            roles.drop_test_database(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """``@pytest.mark.db_role("superuser" | "migrator")``: the test's ``default``
    connection as that role, from before its fixtures (the test's transaction included)
    until after their teardown. For the tests that need more than the application role,
    by name; the suite's own role stays the application's."""
    marker = item.get_closest_marker("db_role")
    if marker is not None:
        from tests.db import roles

        context = roles.default_as(*marker.args)
        context.__enter__()
        item._db_role_context = context
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    context = getattr(item, "_db_role_context", None)
    if context is not None:
        del item._db_role_context
        context.__exit__(None, None, None)


def _default_as(request, role: str):
    from django.db import connections

    from tests.db import roles

    if connections["default"].in_atomic_block:
        raise pytest.UsageError(
            f"{request.fixturename} must set the test's database up itself: request it "
            "instead of db / @pytest.mark.django_db (a transactional marker is fine)"
        )
    with roles.default_as(role):
        request.getfixturevalue("db")
        yield


@pytest.fixture
def default_as_superuser(request):
    """The test's ``default`` connection as the cluster's superuser, for what only it
    may do (creating roles, catalog edits): named, never the suite's default."""
    from tests.db import roles

    yield from _default_as(request, roles.SUPERUSER)


@pytest.fixture
def default_as_migrator(request):
    """The test's ``default`` connection as the migrator, the owner of every table."""
    from tests.db import roles

    yield from _default_as(request, roles.MIGRATOR)


@pytest.fixture(autouse=True)
def _empty_cache():
    """The dashboard caches per-hour totals; each test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield
