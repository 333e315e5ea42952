# Deliberately the shape the linter refuses (two existing tables locked in one
# transaction): the tests prove a wait on the second never holds the first for long.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0001_initial")]
    operations = [
        migrations.AddField("alpha", "note", models.TextField(null=True)),
        migrations.AddField("beta", "note", models.TextField(null=True)),
    ]
