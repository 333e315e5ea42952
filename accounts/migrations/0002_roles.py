"""The three roles: Viewer, Operator, Administrator (groups with permissions).

Permissions are normally created after ``migrate`` (post_migrate), so this data
migration creates them first for every app it can see, then applies the role rule of
``accounts/roles.py`` to them. It depends on the latest migration of each app whose
permissions the roles use (analytics 0003 held the diagnostics permissions; diagnostics
0001 later renames their content type to the diagnostics app, grants included).
Permissions of models added by later migrations are given to the roles by the same
rule after each ``migrate`` (``accounts.roles.sync_roles_after_migrate``).
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import ROLES, apply_roles


def create_roles(apps, schema_editor):
    db = schema_editor.connection.alias
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=db, apps=apps)
    apply_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_initial"),
        ("analytics", "0003_diagnostics_permissions"),
        ("audit", "0002_append_only"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
