# Full-text search over execution history (prompt and response), for the admin.
# The expression must stay identical to core.search.search_vector(): PostgreSQL uses an
# expression index only for queries with the same expression (tests check the plan).
# CONCURRENTLY: on a production table of tens of millions of rows a plain CREATE INDEX
# would block the gateway's writes for the whole build.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="executionhistory",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector(
                    django.db.models.functions.text.Left("prompt", 50000),
                    django.db.models.functions.text.Left("response", 50000),
                    config="english",
                ),
                name="exec_history_search_idx",
            ),
        ),
    ]
