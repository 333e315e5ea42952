"""StatsSnapshot, TableSizeSnapshot, QueryStatSnapshot and Diagnostics leave this app's
state: diagnostics 0001 took them over. State only: their tables stay, unchanged, in
the analytics schema, and their content types were renamed by diagnostics 0001.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_metabase_views"),
        ("diagnostics", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="querystatsnapshot", name="snapshot"),
                migrations.RemoveField(model_name="tablesizesnapshot", name="snapshot"),
                migrations.DeleteModel(name="Diagnostics"),
                migrations.DeleteModel(name="QueryStatSnapshot"),
                migrations.DeleteModel(name="StatsSnapshot"),
                migrations.DeleteModel(name="TableSizeSnapshot"),
            ],
            database_operations=[],
        ),
    ]
