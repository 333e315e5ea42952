"""Activity page: the sessions of the database, filtered by state and duration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext

from diagnostics.pages.common import Page
from diagnostics.queries import activity

STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)


REFRESH_CHOICES = (0, 5, 10, 30, 60)


@dataclass(frozen=True)
class ActivityFilters:
    state: str | None
    min_seconds: float | None
    idle_in_transaction: bool
    errors: tuple[str, ...]
    refresh: int = 0  # seconds between automatic reloads; 0: off

    @property
    def active(self) -> bool:
        return bool(self.state or self.min_seconds is not None or self.idle_in_transaction)


def activity_filters(params: Mapping[str, str]) -> ActivityFilters:
    errors = []
    state = params.get("state") or None
    if state is not None and state not in STATES:
        errors.append(
            gettext("Unknown state %(state)s: filter ignored.") % {"state": repr(state[:40])}
        )
        state = None
    min_seconds = None
    raw = (params.get("min_seconds") or "").strip()
    if raw:
        try:
            min_seconds = float(raw)
            if not 0 <= min_seconds <= 10**7:
                raise ValueError
        except ValueError:
            errors.append(
                gettext("Running longer than: enter a number of seconds; filter ignored.")
            )
            min_seconds = None
    idle_in_tx = params.get("idle_in_transaction") in {"1", "on", "true"}
    refresh = 0
    raw_refresh = (params.get("refresh") or "").strip()
    if raw_refresh:
        if raw_refresh.isdigit() and int(raw_refresh) in REFRESH_CHOICES:
            refresh = int(raw_refresh)
        else:
            errors.append(
                gettext("Refresh: choose one of the offered intervals; auto-refresh is off.")
            )
    return ActivityFilters(state, min_seconds, idle_in_tx, tuple(errors), refresh)


def build(page: Page, params: Mapping[str, str]) -> None:
    filters = activity_filters(params)
    rows = activity.sessions(
        page.alias,
        portal_app=settings.PORTAL_APPLICATION_NAME,
        state=filters.state,
        idle_in_transaction=filters.idle_in_transaction,
        min_seconds=filters.min_seconds,
    )
    hidden = sum(1 for r in rows if r.hidden)
    page.panels.update(
        filters=filters,
        states=STATES,
        refresh_choices=REFRESH_CHOICES[1:],
        refresh=filters.refresh,
        sessions=rows,
        hidden=hidden,
        truncated_at=page.info.track_activity_query_size if page.info else None,
    )
