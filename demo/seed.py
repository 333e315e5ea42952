"""Writing the base seed: ``seed_base()`` inserts what ``build_plan()`` planned and the
database does not hold yet, in one transaction."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models, transaction

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
from demo.groups import seed_groups
from demo.plan import build_plan
from demo.results import SeedError, TableResult, table_label
from demo.snapshots import seed_snapshots

PASSWORD_ENV = "DEMO_USER_PASSWORD"  # noqa: S105 (the variable's name, not a password)


@dataclass
class BaseSeedReport:
    tables: list[TableResult] = field(default_factory=list)
    staff_emails: list[str] = field(default_factory=list)
    # Set only when this run created the staff users and generated their password.
    generated_password: str | None = None


@contextmanager
def keep_given_timestamps(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let ``bulk_create`` store the timestamps set on the objects.

    ``auto_now``/``auto_now_add`` fields overwrite any given value in ``pre_save``; demo
    rows need dates in the past, so the flags are off for the duration of the insert.
    """
    saved = []
    for model in model_classes:
        for f in model._meta.concrete_fields:
            if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add):
                saved.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def insert_rows(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    ignore_conflicts: bool = True,
    batch_size: int = 1000,
) -> TableResult:
    if objs:
        with keep_given_timestamps(model):
            model._default_manager.bulk_create(
                objs, batch_size=batch_size, ignore_conflicts=ignore_conflicts
            )
    return TableResult(table_label(model), len(objs))


def missing_by_pk(model: type[models.Model], objs: Sequence[models.Model]) -> list:
    present = set(
        model._default_manager.filter(pk__in=[o.pk for o in objs]).values_list("pk", flat=True)
    )
    return [o for o in objs if o.pk not in present]


def seed_base(*, now: datetime | None = None, password: str | None = None) -> BaseSeedReport:
    """Insert the base demo data that is not there yet; one transaction.

    Staff users get ``password`` (default: the ``DEMO_USER_PASSWORD`` environment
    variable, else a generated one returned in the report); everyone else gets an
    unusable password.
    """
    plan = build_plan(now)
    report = BaseSeedReport(staff_emails=[u.email for u in plan.staff])
    out = report.tables
    with transaction.atomic():
        out.append(insert_rows(Company, missing_by_pk(Company, plan.companies)))

        users = missing_by_pk(User, plan.users)
        taken = set(
            User.objects.filter(email__in=[u.email for u in users]).values_list("email", flat=True)
        )
        if taken:
            # Demo rows link to the planned ids; someone else's account cannot stand in.
            raise SeedError(
                f"{len(taken)} demo email address(es) already belong to other users "
                f"(e.g. {sorted(taken)[0]}); remove them or seed another database"
            )
        new_staff = [u for u in users if u.is_staff]
        if new_staff:
            password = password or os.environ.get(PASSWORD_ENV) or None
            if password is None:
                password = secrets.token_urlsafe(18)
                report.generated_password = password
            for user in new_staff:
                user.set_password(password)
        out.append(insert_rows(User, users))
        out.extend(seed_groups(plan.staff))

        present = set(
            OAuthAccount.objects.filter(
                provider_account_id__in=[o.provider_account_id for o in plan.oauth]
            ).values_list("provider", "provider_account_id")
        )
        out.append(
            insert_rows(
                OAuthAccount,
                [o for o in plan.oauth if (o.provider, o.provider_account_id) not in present],
            )
        )
        out.append(insert_rows(Project, missing_by_pk(Project, plan.projects)))
        out.append(insert_rows(Automation, missing_by_pk(Automation, plan.automations)))
        out.append(insert_rows(CodexSession, missing_by_pk(CodexSession, plan.sessions)))

        session_ids = [s.session_id for s in plan.sessions]
        with_runs = set(
            ExecutionHistory.objects.filter(session_id__in=session_ids)
            .values_list("session_id", flat=True)
            .distinct()
        )
        out.append(
            insert_rows(
                ExecutionHistory,
                [e for e in plan.executions if e.session_id not in with_runs],
                ignore_conflicts=False,
                batch_size=500,
            )
        )
        # Only some sessions have sandbox runs, so a per-session check would add runs to
        # other sessions whenever the plan changes: any run on a demo session means done.
        sandbox_seeded = SandboxExecution.objects.filter(session_id__in=session_ids).exists()
        out.append(
            insert_rows(
                SandboxExecution, [] if sandbox_seeded else plan.sandbox, ignore_conflicts=False
            )
        )
        cached = {
            (tool, json.dumps(args, sort_keys=True))
            for tool, args in McpCache.objects.filter(
                arguments__in=[c.arguments for c in plan.cache]
            ).values_list("tool_name", "arguments")
        }
        out.append(
            insert_rows(
                McpCache,
                [
                    c
                    for c in plan.cache
                    if (c.tool_name, json.dumps(c.arguments, sort_keys=True)) not in cached
                ],
                ignore_conflicts=False,
            )
        )
        # Per user, all or nothing (the number of sessions per user is part of the plan).
        users_with_sessions = set(
            UserSession.objects.filter(user_id__in=[u.pk for u in plan.users])
            .values_list("user_id", flat=True)
            .distinct()
        )
        out.append(
            insert_rows(
                UserSession,
                [
                    us
                    for us in missing_by_pk(UserSession, plan.user_sessions)
                    if us.user_id not in users_with_sessions
                ],
            )
        )
        out.append(insert_rows(SystemMetric, missing_by_pk(SystemMetric, plan.metrics)))
        out.extend(seed_snapshots(plan.now))
        # Append-only tables: plain INSERTs of the rows not there yet, never ON CONFLICT
        # (a partitioned audit table would not see a conflict across partitions).
        out.append(
            insert_rows(
                ActivityLog, missing_by_pk(ActivityLog, plan.activity), ignore_conflicts=False
            )
        )
        out.append(
            insert_rows(
                SecurityEvent,
                missing_by_pk(SecurityEvent, plan.security),
                ignore_conflicts=False,
            )
        )
    return report
