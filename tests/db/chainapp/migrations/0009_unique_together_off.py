from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0008_unique_together")]
    operations = [
        migrations.AlterUniqueTogether("item", set()),
    ]
