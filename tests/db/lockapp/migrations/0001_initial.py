from django.db import migrations, models

from portal.db.operations import create_schema


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        create_schema("lockapp"),
        migrations.CreateModel(
            name="Alpha",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
            ],
            options={"db_table": 'lockapp"."alpha'},
        ),
        migrations.CreateModel(
            name="Beta",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
            ],
            options={"db_table": 'lockapp"."beta'},
        ),
    ]
