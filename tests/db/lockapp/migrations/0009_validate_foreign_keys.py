from django.db import migrations

from portal.db.operations import ValidateForeignKey


class Migration(migrations.Migration):
    # One table's lock per transaction: alpha's validation never waits holding beta's.
    atomic = False
    dependencies = [("lockapp", "0008_foreign_keys_not_valid")]
    operations = [ValidateForeignKey("alpha", "beta"), ValidateForeignKey("beta", "alpha")]
