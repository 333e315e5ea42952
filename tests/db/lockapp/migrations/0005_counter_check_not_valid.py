from django.db import migrations, models

from portal.db.operations import AddConstraintNotValid


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0004_alpha_counter")]
    operations = [
        AddConstraintNotValid(
            "alpha",
            models.CheckConstraint(
                condition=models.Q(counter__gte=0), name="alpha_counter_not_negative"
            ),
        ),
    ]
