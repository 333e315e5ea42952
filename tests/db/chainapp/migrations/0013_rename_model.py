from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0012_rename_field")]
    operations = [
        migrations.RenameModel("Item", "Thing"),
        migrations.AlterModelTable("thing", 'chain_a"."thing'),
    ]
