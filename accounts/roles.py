"""The portal's three roles, as Django groups whose permissions follow a rule.

- Viewer: every ``view_*`` permission of the portal's apps (so every admin list and
  detail page, the audit trail, and ``diagnostics.view_diagnostics``); nothing else.
- Operator: Viewer + ``diagnostics.signal_backend`` (cancel / terminate database
  sessions) + ``core.delete_mcpcache`` (purging the tool cache deletes its entries:
  the purge-expired action and deleting selected entries both need it).
- Administrator: every permission of the portal's apps — users, groups, permissions,
  diagnostics actions, unlocking locked-out logins — except adding, changing or
  deleting audit rows, which nobody may do.

The rule is evaluated over the permissions that exist, so a model added later is
covered without editing this file: ``accounts/migrations/0002_roles.py`` applies it
once, and a ``post_migrate`` receiver applies it after every ``migrate`` (and after a
test-suite flush), when Django has created the new models' permissions. Applying makes
each role hold exactly what its rule gives: a permission removed by hand comes back,
and one added by hand (or by an older rule) is taken away at the next migrate; the
audit trail's write permissions are also taken from every other group and user. To
change a role, change this file. An app added later must be listed in ``ROLE_APPS``.
"""

from collections.abc import Callable

VIEWER = "Viewer"
OPERATOR = "Operator"
ADMINISTRATOR = "Administrator"
ROLES = (VIEWER, OPERATOR, ADMINISTRATOR)

#: Apps whose permissions the roles are made of (Django's auth for groups, axes for
#: locked-out logins).
ROLE_APPS = ("accounts", "auth", "core", "analytics", "diagnostics", "audit", "axes")
OPERATOR_EXTRA = ("diagnostics.signal_backend", "core.delete_mcpcache")
#: Nobody writes to the audit trail through the admin.
NEVER = ("audit.add_", "audit.change_", "audit.delete_")


def _is_viewer(name: str) -> bool:
    return name.split(".", 1)[1].startswith("view_")


RULES: dict[str, Callable[[str], bool]] = {
    VIEWER: _is_viewer,
    OPERATOR: lambda name: _is_viewer(name) or name in OPERATOR_EXTRA,
    ADMINISTRATOR: lambda name: not name.startswith(NEVER),
}


def role_permission_ids(Permission) -> dict[str, set[int]]:
    """Permission ids each role should hold, for the given (possibly historical) model."""
    rows = Permission.objects.filter(content_type__app_label__in=ROLE_APPS).values_list(
        "id", "content_type__app_label", "codename"
    )
    names = {pk: f"{app}.{codename}" for pk, app, codename in rows}
    return {role: {pk for pk, name in names.items() if rule(name)} for role, rule in RULES.items()}


def apply_roles(Group, Permission) -> dict[str, list[int]]:
    """Create the groups if missing and make each hold exactly what its rule gives.

    Returns the permission ids added per role (removals are recorded through the same
    signals). Works with historical models (the migration) and real ones
    (post_migrate, where the changes fire ``m2m_changed`` and so reach the audit trail).
    """
    added: dict[str, list[int]] = {}
    for role, wanted in role_permission_ids(Permission).items():
        group, _ = Group.objects.get_or_create(name=role)
        have = set(group.permissions.values_list("id", flat=True))
        missing = sorted(wanted - have)
        extra = sorted(have - wanted)
        if missing:
            group.permissions.add(*missing)
            added[role] = missing
        if extra:
            group.permissions.remove(*extra)
    _revoke_never(Group, Permission)
    return added


def never_permission_ids(Permission) -> set[int]:
    ids: set[int] = set()
    for prefix in NEVER:
        app, codename = prefix.split(".", 1)
        ids |= set(
            Permission.objects.filter(
                content_type__app_label=app, codename__startswith=codename
            ).values_list("id", flat=True)
        )
    return ids


def _revoke_never(Group, Permission) -> None:
    """No group or user keeps a permission that nobody may hold."""
    never = never_permission_ids(Permission)
    if not never:
        return
    for group in Group.objects.filter(permissions__in=never).distinct():
        group.permissions.remove(*never)
    user_model = Permission._meta.get_field("user").related_model
    for user in user_model._base_manager.filter(user_permissions__in=never).distinct():
        user.user_permissions.remove(*never)


def sync_roles_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate receiver (connected for the accounts app: it runs once per migrate)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission
    from django.db import connections

    tables = set(connections[using].introspection.table_names())
    if not {"auth_group", "auth_permission", "auth_group_permissions"} <= tables:
        return
    # Permissions of apps later in INSTALLED_APPS than accounts may not exist yet.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    from audit.models import ActivityLog, SecurityEvent

    audit_ready = {ActivityLog._meta.db_table, SecurityEvent._meta.db_table} <= tables
    if audit_ready:
        apply_roles(Group, Permission)
    else:
        # The audit tables are gone (audit migrated to zero): apply without recording.
        from audit.services import recording_suspended

        with recording_suspended():
            apply_roles(Group, Permission)
