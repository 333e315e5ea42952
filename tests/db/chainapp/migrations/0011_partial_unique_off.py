from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0010_partial_unique")]
    operations = [
        migrations.RemoveConstraint("item", "item_flagged_name_uniq"),
    ]
