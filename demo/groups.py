"""Demo permission groups, the staff's memberships and two direct grants.

``demo.builders.audit`` records matching group and permission changes, so the security
log tells the same story as the tables.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from accounts.models import User
from demo.results import TableResult, table_label

# New groups only; an existing group of the same name is left as it is.
DEMO_GROUPS = [
    ("Support", ["core", "analytics"]),
    ("Security reviewers", ["audit", "accounts"]),
]
DIRECT_PERMISSION = ("audit", "view_securityevent")
DIRECT_GRANTEES = {0, 2}  # indexes into the staff users


def seed_groups(staff: list[User]) -> list[TableResult]:
    """Demo groups (view permissions), staff memberships and two direct grants."""
    created_groups = 0
    groups = []
    for name, apps in DEMO_GROUPS:
        group, created = Group.objects.get_or_create(name=name)
        if created:
            created_groups += 1
            group.permissions.set(
                Permission.objects.filter(
                    content_type__app_label__in=apps, codename__startswith="view_"
                )
            )
        groups.append(group)
    staff_ids = [u.pk for u in staff]

    memberships = User.groups.through
    present = set(
        memberships.objects.filter(user_id__in=staff_ids).values_list("user_id", "group_id")
    )
    new_memberships = [
        memberships(user_id=user.pk, group_id=groups[i % len(groups)].pk)
        for i, user in enumerate(staff)
        if (user.pk, groups[i % len(groups)].pk) not in present
    ]
    memberships.objects.bulk_create(new_memberships, ignore_conflicts=True)

    grants = User.user_permissions.through
    permission = Permission.objects.filter(
        content_type__app_label=DIRECT_PERMISSION[0], codename=DIRECT_PERMISSION[1]
    ).first()
    new_grants = []
    if permission is not None:
        present = set(
            grants.objects.filter(user_id__in=staff_ids).values_list("user_id", "permission_id")
        )
        new_grants = [
            grants(user_id=staff[i].pk, permission_id=permission.pk)
            for i in sorted(DIRECT_GRANTEES)
            if (staff[i].pk, permission.pk) not in present
        ]
        grants.objects.bulk_create(new_grants, ignore_conflicts=True)
    return [
        TableResult(table_label(Group), created_groups),
        TableResult(table_label(memberships), len(new_memberships)),
        TableResult(table_label(grants), len(new_grants)),
    ]
