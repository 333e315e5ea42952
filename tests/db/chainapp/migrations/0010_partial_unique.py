from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0009_unique_together_off")]
    operations = [
        migrations.AddConstraint(
            "item",
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(flag=True), name="item_flagged_name_uniq"
            ),
        ),
    ]
