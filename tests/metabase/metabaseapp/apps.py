from django.apps import AppConfig


class MetabaseAppConfig(AppConfig):
    """A test-only app whose migration adds a table to ``core`` after Metabase's grants.

    tests/metabase/test_access.py migrates it to zero, runs ``metabase_access``, then
    migrates it forward: the new table must be readable by the Metabase role at once.
    """

    name = "tests.metabase.metabaseapp"
    label = "metabaseapp"
