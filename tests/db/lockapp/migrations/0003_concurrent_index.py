from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("lockapp", "0002_two_tables_one_transaction")]
    operations = [
        AddIndexConcurrently("beta", models.Index(fields=["note"], name="beta_note_idx")),
    ]
