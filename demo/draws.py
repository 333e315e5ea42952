"""The seeded random draws the demo rows are made with: ids, weighted picks, moments, IPs.

Everything draws from an RNG the caller passes in, so the order of calls is what makes a
run reproducible.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

# Fixed forever: changing it would make a second run insert a second copy.
DEMO_NAMESPACE = uuid.UUID("6f0d3c52-2c1e-4f4b-9a57-0d1e5e3a9b21")
SEED = 42
# Relative weights of the hour of day (UTC) at which people work with the agent.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 13, 16, 16, 14, 10, 14, 16, 15, 13, 10, 7, 5, 4, 3, 2, 1]


def demo_uuid(kind: str, key: object) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}")


def weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[w for _, w in pairs])[0]


def expand(pairs: Sequence[tuple[str, int]]) -> list[str]:
    """A list where each value appears as often as its weight (for SQL picks by modulo)."""
    return [value for value, weight in pairs for _ in range(weight)]


def time_of_day(rng: random.Random, day: datetime) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def past_moment(rng: random.Random, now: datetime, max_days: int, *, bias: float = 1.0) -> datetime:
    """A past moment within ``max_days``, recent days likelier when ``bias`` > 1."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = int(max_days * rng.random() ** bias)
    moment = time_of_day(rng, midnight - timedelta(days=days))
    return moment if moment <= now else moment - timedelta(days=1)


def demo_ip(rng: random.Random, v6_share: float = 0.15) -> str:
    # Documentation and private ranges only: demo data must not name real hosts.
    if rng.random() < v6_share:
        groups = ":".join(f"{rng.randrange(0x10000):x}" for _ in range(4))
        return f"2001:db8:{rng.randrange(0x10000):x}::{groups}"
    net = rng.choice(["203.0.113", "198.51.100", "192.0.2", "10.20.4", "172.16.8"])
    return f"{net}.{rng.randrange(1, 255)}"
