# A reference column written without its constraint (as the gateway's rows were): the
# next migration gives it the constraint NOT VALID, so rows already there that point
# nowhere do not stop it.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0006_validate_counter_check")]
    operations = [
        migrations.AddField(
            "alpha",
            "beta",
            models.ForeignKey(
                "lockapp.beta",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                db_constraint=False,
                db_index=False,
            ),
        ),
    ]
