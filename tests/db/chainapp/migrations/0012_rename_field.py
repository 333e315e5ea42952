from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0011_partial_unique_off")]
    operations = [
        migrations.RenameField("item", "note", "remark"),
    ]
