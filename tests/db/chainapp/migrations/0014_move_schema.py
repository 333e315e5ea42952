from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0013_rename_model")]
    operations = [
        migrations.AlterModelTable("thing", 'chain_b"."thing'),
    ]
