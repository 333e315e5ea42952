"""Rows for the analytics app: people's portal sessions and two weeks of system metrics."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import TYPE_CHECKING

from analytics.models import SystemMetric, UserSession
from demo.builders.accounts import company_of
from demo.corpus import METRICS, USER_AGENTS
from demo.draws import demo_ip, demo_uuid, past_moment

if TYPE_CHECKING:
    from demo.plan import SeedPlan


def plan_analytics(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    for user in plan.users:
        if not company_of(user).is_active:
            continue
        home_ip, agent = demo_ip(rng), rng.choice(USER_AGENTS)
        count = rng.randint(8, 30) if user.is_active else rng.randint(1, 4)
        for k in range(count):
            start = past_moment(rng, now, 60 if user.is_active else 90, bias=1.2)
            if not user.is_active:
                start -= timedelta(days=30)
            ongoing = user.is_active and k == 0 and rng.random() < 0.1
            if ongoing:
                start = now - timedelta(minutes=rng.randint(1, 50))
            plan.user_sessions.append(
                UserSession(
                    id=demo_uuid("user-session", f"{user.email}:{k}"),
                    user=user,
                    session_start=start,
                    session_end=None
                    if ongoing
                    else start + timedelta(minutes=int(2 + rng.expovariate(1 / 25))),
                    ip_address=home_ip if rng.random() < 0.8 else demo_ip(rng),
                    user_agent=agent if rng.random() < 0.85 else rng.choice(USER_AGENTS),
                    actions_count=int(1 + rng.expovariate(1 / 30)),
                )
            )
    step = timedelta(minutes=30)
    # A fixed number of slots ending at the last full half hour, so that ids (by slot
    # number) and the RNG sequence do not depend on the clock.
    slots = 14 * 48
    last = now.replace(minute=30 if now.minute >= 30 else 0, second=0, microsecond=0)
    for name, base, amplitude, noise, tags in METRICS:
        for s in range(slots):
            at = last - (slots - 1 - s) * step
            hour = at.hour + at.minute / 60
            # Daytime load: a smooth bump peaking mid-afternoon, lower on weekends.
            load = max(0.0, math.sin(math.pi * (hour - 6) / 15)) if 6 <= hour <= 21 else 0.0
            if at.weekday() >= 5:
                load *= 0.35
            value = (base + amplitude * load) * (1 + rng.gauss(0, noise))
            if name == "mcp.cache_hit_ratio":
                value = min(0.99, max(0.2, value))
            elif name in {"cloudsql.cpu_utilization"}:
                value = min(1.0, max(0.01, value))
            elif name in {"gateway.active_sessions", "cloudsql.connections"}:
                value = round(max(0.0, value))
            elif name == "cloudrun.instance_count":
                value = max(1, round(value))
            plan.metrics.append(
                SystemMetric(
                    id=demo_uuid("metric", f"{name}:{s}"),
                    metric_name=name,
                    metric_value=round(max(0.0, value), 6),
                    tags={**tags, "region": "europe-west1", "env": "demo"},
                    recorded_at=at,
                )
            )
