from django.db import migrations

from portal.db.operations import ValidateConstraint


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0005_counter_check_not_valid")]
    operations = [ValidateConstraint("alpha", "alpha_counter_not_negative")]
