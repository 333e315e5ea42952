"""Rows for the accounts app: companies, their people (a few of them staff) and the
OAuth accounts linked to them."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from accounts.models import Company, OAuthAccount, SubscriptionPlan, User
from demo.corpus import COMPANIES, DEPARTMENTS_WEIGHTED, FIRST_NAMES, LAST_NAMES, TECH_DEPARTMENTS
from demo.draws import demo_uuid, past_moment, weighted

if TYPE_CHECKING:
    from demo.plan import SeedPlan


def caller_id(user: User) -> str:
    """How the gateway names this user: its identity-provider id, email or an opaque id."""
    if user.keycloak_id:
        return user.keycloak_id
    if int(user.pk.hex[-1], 16) % 2:
        return user.email
    return f"usr_{user.pk.hex[:24]}"


def company_of(user: User) -> Company:
    """The user's company: the field is nullable, but every demo user is planned with one."""
    company = user.company
    assert company is not None  # plan_accounts creates every user with its company
    return company


def plan_accounts(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    used_emails: set[str] = set()
    for name, domain, sub_plan, max_users, active, n_users in COMPANIES:
        company = Company(
            id=demo_uuid("company", domain),
            name=name,
            domain=domain,
            subscription_plan=SubscriptionPlan(sub_plan),
            max_users=max_users,
            is_active=active,
            created_at=now - timedelta(days=rng.randint(200, 900), minutes=rng.randrange(1440)),
        )
        company.updated_at = company.created_at + timedelta(days=rng.randint(0, 150))
        plan.companies.append(company)
        for _ in range(n_users):
            while True:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                local = f"{first}.{last}".lower().replace("ü", "ue")
                email = f"{local}@{domain}"
                if email not in used_emails:
                    used_emails.add(email)
                    break
            joined = company.created_at + timedelta(
                days=rng.randint(0, max(1, (now - company.created_at).days - 70))
            )
            user = User(
                id=demo_uuid("user", email),
                email=email,
                first_name=first,
                last_name=last,
                company=company,
                department=weighted(rng, DEPARTMENTS_WEIGHTED),
                subscription_plan=company.subscription_plan,
                keycloak_id=str(demo_uuid("keycloak", email)) if rng.random() < 0.6 else None,
                is_active=active and rng.random() > 0.06,
                created_at=joined,
                updated_at=joined + timedelta(days=rng.randint(0, 60)),
            )
            user.last_login = (
                past_moment(rng, now, 20, bias=1.5)
                if user.is_active and rng.random() < 0.85
                else None
            )
            user.set_unusable_password()
            plan.users.append(user)
    # A handful of staff with a usable password, so the admin can be tried as them.
    for company in plan.companies[:4]:
        members = [u for u in plan.users if u.company is company and u.is_active]
        staff = members[0]
        staff.is_staff = True
        staff.department = "Platform"
        plan.staff.append(staff)

    for user in plan.users:
        plan.callers[user.pk] = caller_id(user)
        if user.keycloak_id:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="keycloak",
                    provider_account_id=user.keycloak_id,
                    created_at=user.created_at,
                )
            )
        if rng.random() < 0.5:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="google",
                    provider_account_id=str(rng.randrange(10**20, 10**21)),
                    created_at=user.created_at + timedelta(minutes=rng.randint(1, 5000)),
                )
            )
        if user.department in TECH_DEPARTMENTS and rng.random() < 0.65:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="github",
                    provider_account_id=str(rng.randint(120_000, 190_000_000)),
                    created_at=user.created_at + timedelta(days=rng.randint(0, 30)),
                )
            )
