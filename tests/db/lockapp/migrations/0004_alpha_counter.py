from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0003_concurrent_index")]
    operations = [
        migrations.AddField("alpha", "counter", models.IntegerField(default=0, db_default=0)),
    ]
