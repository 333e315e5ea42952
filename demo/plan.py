"""Every row of the base seed, in memory: ``build_plan()``.

One RNG, seeded with ``demo.draws.SEED``, is passed through the per-app builders in a
fixed order, so every run plans the same rows (and the same primary keys).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from accounts.models import Company, OAuthAccount, User
from analytics.models import SystemMetric, UserSession
from audit.models import ActivityLog, SecurityEvent
from core.models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    McpCache,
    Project,
    SandboxExecution,
)
from demo.builders.accounts import plan_accounts
from demo.builders.analytics import plan_analytics
from demo.builders.audit import plan_audit
from demo.builders.core import plan_cache, plan_projects, plan_sessions
from demo.draws import SEED


@dataclass
class SeedPlan:
    """Everything the base seed will insert, built from one RNG in a fixed order."""

    now: datetime
    companies: list[Company] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    staff: list[User] = field(default_factory=list)
    oauth: list[OAuthAccount] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    automations: list[Automation] = field(default_factory=list)
    sessions: list[CodexSession] = field(default_factory=list)
    executions: list[ExecutionHistory] = field(default_factory=list)
    sandbox: list[SandboxExecution] = field(default_factory=list)
    cache: list[McpCache] = field(default_factory=list)
    user_sessions: list[UserSession] = field(default_factory=list)
    metrics: list[SystemMetric] = field(default_factory=list)
    activity: list[ActivityLog] = field(default_factory=list)
    security: list[SecurityEvent] = field(default_factory=list)
    callers: dict[uuid.UUID, str] = field(default_factory=dict)


def build_plan(now: datetime | None = None) -> SeedPlan:
    """Every row of the base seed, in memory. Same RNG order on every run."""
    rng = random.Random(SEED)  # noqa: S311 (demo data, reproducible on purpose)
    plan = SeedPlan(now=now or timezone.now())
    plan_accounts(plan, rng)
    plan_projects(plan, rng)
    plan_sessions(plan, rng)
    plan_cache(plan, rng)
    plan_analytics(plan, rng)
    plan_audit(plan, rng)
    return plan
