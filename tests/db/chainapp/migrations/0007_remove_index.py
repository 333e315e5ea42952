from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0006_rename_index")]
    operations = [
        migrations.RemoveIndex("item", "item_name_idx2"),
    ]
