from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0004_unique_off")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx")),
    ]
