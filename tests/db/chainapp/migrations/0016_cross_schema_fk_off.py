from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0015_cross_schema_fk")]
    operations = [
        migrations.RemoveField("thing", "parent"),
    ]
