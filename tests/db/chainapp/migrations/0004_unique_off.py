from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0003_unique_on")]
    operations = [
        migrations.AlterField("item", "code", models.CharField(max_length=20)),
    ]
