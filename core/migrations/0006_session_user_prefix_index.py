# The sessions' user_id index with pattern operators: it answers equality as before and
# also the admin search's prefix match (LIKE 'usr_3f%') whatever the database collation.
# CONCURRENTLY: see 0002.

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0005_execution_hours"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="codexsession",
            index=models.Index(
                fields=["user_id"],
                opclasses=["varchar_pattern_ops"],
                name="codex_sessions_user_prefix_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="codexsession", name="codex_sessions_user_idx"),
    ]
