from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0005_add_index")]
    operations = [
        migrations.RenameIndex("item", new_name="item_name_idx2", old_name="item_name_idx"),
    ]
