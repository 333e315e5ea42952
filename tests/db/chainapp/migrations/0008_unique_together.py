from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chainapp", "0007_remove_index")]
    operations = [
        migrations.AlterUniqueTogether("item", {("name", "qty")}),
    ]
