import django.db.models.deletion
from django.db import migrations, models

from portal.db.operations import AddForeignKeyNotValid


class Migration(migrations.Migration):
    atomic = False  # the fields' indexes are built CONCURRENTLY
    dependencies = [("lockapp", "0007_alpha_beta_without_constraint")]
    operations = [
        # An existing column gains its constraint (and index).
        AddForeignKeyNotValid(
            "alpha",
            "beta",
            models.ForeignKey(
                "lockapp.beta",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
            ),
        ),
        # A new column, with its constraint and index.
        AddForeignKeyNotValid(
            "beta",
            "alpha",
            models.ForeignKey(
                "lockapp.alpha",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
            ),
        ),
    ]
