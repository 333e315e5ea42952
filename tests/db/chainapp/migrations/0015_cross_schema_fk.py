from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chainapp", "0014_move_schema"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [
        migrations.AddField(
            "thing",
            "parent",
            models.ForeignKey("chainapp.parent", null=True, on_delete=models.CASCADE),
        ),
        migrations.AddField(
            "thing",
            "owner",
            models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL),
        ),
    ]
