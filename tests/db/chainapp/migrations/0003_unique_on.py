from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0002_add_field")]
    operations = [
        migrations.AlterField("item", "code", models.CharField(max_length=20, unique=True)),
    ]
