from django.db import migrations, models

from portal.db.operations import create_schema


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        create_schema("chain_a"),
        create_schema("chain_b"),
        migrations.CreateModel(
            name="Parent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
            ],
            options={"db_table": 'chain_a"."parent'},
        ),
        migrations.CreateModel(
            name="Item",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
                ("code", models.CharField(max_length=20)),
                ("qty", models.IntegerField(default=0)),
                ("flag", models.BooleanField(default=False)),
            ],
            options={"db_table": 'chain_a"."item'},
        ),
    ]
