"""Rows for the audit app: staff activity, database-diagnostics actions, and security
events (logins, a credential-stuffing burst ending in a lockout, group and permission
changes that match what ``demo.groups`` grants)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import models

from accounts.models import User
from audit.models import ActivityLog, SecurityEvent
from demo.builders.accounts import company_of
from demo.corpus import USER_AGENTS
from demo.draws import demo_ip, demo_uuid, past_moment, weighted
from demo.groups import DEMO_GROUPS, DIRECT_GRANTEES, DIRECT_PERMISSION

if TYPE_CHECKING:
    from demo.plan import SeedPlan


def plan_audit(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    actors = plan.staff
    targets: list[tuple[str, models.Model]] = (
        [("core.project", p) for p in plan.projects]
        + [("core.automation", a) for a in plan.automations]
        + [("accounts.user", u) for u in plan.users]
        + [("accounts.company", c) for c in plan.companies]
    )
    for i in range(500):
        actor = rng.choice(actors)
        ip, agent = demo_ip(rng, 0.1), rng.choice(USER_AGENTS[:5])
        when = past_moment(rng, now, 60, bias=1.2)
        resource_type, obj = rng.choice(targets)
        action = weighted(
            rng, [("view", 40), ("change", 30), ("create", 10), ("export", 8), ("delete", 4)]
        )
        details: dict[str, Any] = {}
        # The app's vocabulary (audit.services): "change" with {"old", "new"} per field.
        if action == "change":
            if resource_type == "core.project":
                new = rng.choice(["paused", "archived"])
                details = {"changes": {"status": {"old": "active", "new": new}}}
            elif resource_type == "core.automation":
                details = {"changes": {"is_active": {"old": True, "new": False}}}
            elif resource_type == "accounts.user":
                details = {"changes": {"department": {"old": "", "new": "Engineering"}}}
            else:
                details = {"changes": {"max_users": {"old": 10, "new": rng.choice([25, 50, 100])}}}
        elif action == "export":
            details = {"format": rng.choice(["csv", "json"]), "rows": rng.randint(10, 5000)}
        plan.activity.append(
            ActivityLog(
                id=demo_uuid("activity", i),
                user=actor,
                actor_email=actor.email,
                action=action,
                resource_type=resource_type,
                resource_id=str(obj.pk),
                object_repr=str(obj)[:500],
                details=details,
                ip_address=ip,
                user_agent=agent,
                request_id=demo_uuid("request", i).hex,
                created_at=when,
            )
        )
    # Database-diagnostics actions and a system job without a user.
    for i in range(30):
        actor = rng.choice(actors)
        # The names the diagnostics actions and the cache purge record.
        action = rng.choice(
            ["diagnostics.cancel_backend", "diagnostics.terminate_backend", "purge"]
        )
        system = action == "purge"
        plan.activity.append(
            ActivityLog(
                id=demo_uuid("activity-ops", i),
                user=None if system else actor,
                actor_email="" if system else actor.email,
                action=action,
                resource_type="core.mcpcache" if system else "pg_backend",
                resource_id="" if system else str(rng.randint(1000, 65000)),
                object_repr="expired tool cache" if system else "pid backend",
                details={"deleted": rng.randint(10, 4000)}
                if system
                else {"query": "SELECT * FROM events ORDER BY payload->>'ts'", "duration_s": 912},
                ip_address=None if system else demo_ip(rng, 0.0),
                user_agent="" if system else USER_AGENTS[0],
                request_id="" if system else demo_uuid("request-ops", i).hex,
                created_at=past_moment(rng, now, 60),
            )
        )

    n = 0

    def event(kind: str, user: User | None, email: str, ip: str, at: datetime, **details):
        nonlocal n
        n += 1
        plan.security.append(
            SecurityEvent(
                id=demo_uuid("security", n),
                event_type=kind,
                user=user,
                email_attempted=email,
                ip_address=ip,
                user_agent=rng.choice(USER_AGENTS[:5]),
                details=details,
                created_at=at,
            )
        )

    for _ in range(260):
        user = rng.choice(plan.staff + plan.staff + plan.users[:20])
        ip, at = demo_ip(rng, 0.1), past_moment(rng, now, 60, bias=1.2)
        if rng.random() < 0.12:
            event("login_failure", user, user.email, ip, at, reason="invalid_password")
            at += timedelta(seconds=rng.randint(5, 60))
        event("login_success", user, user.email, ip, at, method="password")
        if rng.random() < 0.6:
            event("logout", user, user.email, ip, at + timedelta(minutes=rng.randint(3, 240)))
    # A small credential-stuffing burst from one address, ending in a lockout.
    burst_ip, burst_at = "198.51.100.77", now - timedelta(days=9, hours=3)
    target = plan.staff[1]
    for k in range(12):
        email = (
            target.email
            if k % 3 == 0
            else rng.choice(["admin@", "root@", "it@"]) + (company_of(target).domain)
        )
        event(
            "login_failure",
            target if email == target.email else None,
            email,
            burst_ip,
            burst_at + timedelta(seconds=7 * k),
            reason="invalid_password" if email == target.email else "unknown_user",
        )
    event("lockout", target, target.email, burst_ip, burst_at + timedelta(seconds=90), failures=5)
    for staff in plan.staff:
        event(
            "password_change",
            staff,
            staff.email,
            demo_ip(rng, 0.0),
            past_moment(rng, now, 50),
            method="self_service",
        )
    # Mirrors demo.groups.seed_groups: staff i joins DEMO_GROUPS[i % 2]; DIRECT_GRANTEES get
    # DIRECT_PERMISSION on top.
    granter = plan.staff[0]
    for i, staff in enumerate(plan.staff):
        at = staff.created_at + timedelta(days=1, minutes=rng.randint(0, 600))
        event(
            "group_change",
            staff,
            staff.email,
            demo_ip(rng, 0.0),
            at,
            by=granter.email,
            group=DEMO_GROUPS[i % len(DEMO_GROUPS)][0],
            added=True,
        )
        if i in DIRECT_GRANTEES:
            event(
                "permission_change",
                staff,
                staff.email,
                demo_ip(rng, 0.0),
                at + timedelta(minutes=5),
                by=granter.email,
                permission=".".join(DIRECT_PERMISSION),
                granted=True,
            )
