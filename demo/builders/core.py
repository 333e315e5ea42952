"""Rows for the core app (the gateway's tables): projects and their automations, agent
sessions with their execution history and sandbox runs, and the MCP tool cache."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from accounts.models import Company
from core.models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    McpCache,
    Project,
    SandboxExecution,
)
from demo.builders.accounts import company_of
from demo.content import CACHE_TTLS, exchange, mcp_entry, sandbox_result
from demo.corpus import (
    BRANCHES,
    CLIENT_OS,
    CLIENT_VERSIONS,
    FINAL_STATUSES_WEIGHTED,
    MODELS_WEIGHTED,
    PROJECTS,
    SANDBOX_ERRORS,
    SANDBOX_IMAGES,
    SANDBOX_QUERIES,
    SERVICE_CALLERS,
)
from demo.draws import demo_uuid, past_moment, weighted

if TYPE_CHECKING:
    from demo.plan import SeedPlan

BASE_SESSIONS = 400


def _automation_config(
    rng: random.Random, kind: str, company: Company, project: Project
) -> tuple[str, dict]:
    domain = company.domain
    if kind == Automation.Type.N8N:
        trigger = rng.choice(["cron", "webhook", "cron"])
        name = rng.choice(
            [
                f"Sync {project.name} failures to Slack",
                f"Nightly {project.name} export to BigQuery",
                "Create Jira ticket from failed agent session",
                "Post weekly usage digest",
            ]
        )
        config: dict[str, Any] = {
            "workflow_id": f"{rng.randrange(16**8):08x}",
            "base_url": f"https://n8n.{domain}",
            "trigger": {"type": trigger},
            "nodes": rng.sample(
                ["HTTP Request", "Postgres", "Slack", "IF", "Set", "Jira", "BigQuery", "Code"],
                k=rng.randint(3, 6),
            ),
            "retry_on_fail": rng.random() < 0.7,
            "timezone": "Europe/Berlin",
        }
        if trigger == "cron":
            config["trigger"]["schedule"] = rng.choice(
                ["0 */6 * * *", "15 2 * * *", "0 8 * * 1", "*/30 * * * *"]
            )
        else:
            config["trigger"]["webhook_path"] = f"/webhook/{demo_uuid('hook', project.pk)}"
        return name, config
    if kind == Automation.Type.MAUTIC:
        segment = rng.choice(["trial-users", "inactive-30d", "enterprise-admins", "new-signups"])
        return f"Mautic campaign: {segment}", {
            "base_url": f"https://mautic.{domain}",
            "campaign_id": rng.randint(3, 240),
            "segment": segment,
            "emails": [
                {"template": t, "delay_days": d}
                for t, d in zip(
                    ["welcome", "first-session-tips", "invite-your-team", "upgrade-offer"],
                    [0, 2, 5, 12],
                    strict=True,
                )
            ][: rng.randint(2, 4)],
            "utm_campaign": f"{project.name}-{segment}",
        }
    bot = rng.choice(["lead-qualification", "support-triage", "onboarding-survey", "nps"])
    return f"Typebot: {bot.replace('-', ' ')}", {
        "typebot_id": f"cl{rng.randrange(36**10):010x}",
        "public_id": f"{company.domain.split('.')[0]}-{bot}",
        "theme": {"font": "Inter", "primary_color": rng.choice(["#0B5FFF", "#16A34A", "#9333EA"])},
        "variables": rng.sample(["email", "company", "plan", "team_size", "use_case"], k=3),
        "webhook_url": f"https://api.{domain}/hooks/typebot",
    }


def plan_projects(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    names = iter(PROJECTS * 3)
    # Larger companies get more projects: 25 in all.
    per_company = [6, 5, 4, 3, 3, 2, 1, 1]
    for company, count in zip(plan.companies, per_company, strict=True):
        members = [u for u in plan.users if u.company is company]
        for _ in range(count):
            slug, description = next(names)
            owner = rng.choice([u for u in members if u.is_active] or members)
            created = max(owner.created_at, now - timedelta(days=rng.randint(30, 400)))
            plan.projects.append(
                Project(
                    id=demo_uuid("project", f"{company.domain}/{slug}"),
                    name=slug,
                    description=description,
                    company=company,
                    owner=owner,
                    status=weighted(rng, [("active", 70), ("paused", 15), ("archived", 15)]),
                    created_at=created,
                    updated_at=created + timedelta(days=rng.randint(0, 25)),
                )
            )
    for i in range(40):
        project = plan.projects[i % len(plan.projects)] if i < 25 else rng.choice(plan.projects)
        kind = weighted(rng, [("n8n", 50), ("mautic", 25), ("typebot", 25)])
        name, config = _automation_config(rng, kind, project.company, project)
        created = project.created_at + timedelta(days=rng.randint(0, 20))
        plan.automations.append(
            Automation(
                id=demo_uuid("automation", i),
                name=name,
                type=kind,
                config=config,
                project=project,
                is_active=project.status == "active" and rng.random() < 0.85,
                created_at=created,
                updated_at=created + timedelta(days=rng.randint(0, 10)),
            )
        )


def _session_metadata(rng: random.Random, project: Project | None) -> dict[str, Any]:
    if project is not None:
        org = project.company.domain.split(".")[0]
        repo = f"{org}/{project.name}"
    else:
        repo = "platform/agent-gateway"
    meta: dict[str, Any] = {
        "repo": repo,
        "branch": rng.choice(BRANCHES),
        "base_commit": f"{rng.getrandbits(160):040x}",
        "client": {
            "name": "codex-cli",
            "version": rng.choice(CLIENT_VERSIONS),
            "os": rng.choice(CLIENT_OS),
        },
        "sandbox_image": rng.choice(SANDBOX_IMAGES),
        "approval_policy": rng.choice(["on-request", "on-request", "never", "untrusted"]),
        "sandbox_mode": rng.choice(["workspace-write", "workspace-write", "read-only"]),
    }
    if project is not None:
        meta["project_id"] = str(project.pk)
    return meta


def _execution_ms(rng: random.Random) -> int:
    if rng.random() < 0.015:  # the occasional very slow round
        return rng.randint(120_000, 600_000)
    return int(min(110_000, 250 + rng.lognormvariate(8.0, 0.9)))


def _tokens(rng: random.Random) -> int:
    return int(min(180_000, 80 + rng.lognormvariate(7.6, 0.8)))


def plan_sessions(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    active_users = [u for u in plan.users if u.is_active and company_of(u).is_active]
    # Some people use the agent far more than others.
    weights = [rng.paretovariate(1.3) for _ in active_users]
    projects_by_company: dict[uuid.UUID, list[Project]] = {}
    for owned in plan.projects:
        projects_by_company.setdefault(owned.company.pk, []).append(owned)

    project: Project | None
    response: str | None
    for i in range(BASE_SESSIONS):
        if rng.random() < 0.04:
            user_id, project = rng.choice(SERVICE_CALLERS), None
        else:
            user = rng.choices(active_users, weights=weights)[0]
            user_id = plan.callers[user.pk]
            project = rng.choice(projects_by_company.get(company_of(user).pk, [None]))
        created = (
            now - timedelta(minutes=rng.randint(5, 600))
            if i < 15  # a few from today, so "today" views have something to show
            else past_moment(rng, now, 60, bias=1.3)
        )
        # Draw both every time: the RNG sequence must not depend on the clock.
        still_running, status = rng.random() < 0.7, weighted(rng, FINAL_STATUSES_WEIGHTED)
        if still_running and now - created < timedelta(hours=3):
            status = "active"
        session = CodexSession(
            session_id=demo_uuid("session", i),
            user_id=user_id,
            model=weighted(rng, MODELS_WEIGHTED),
            status=status,
            metadata=_session_metadata(rng, project),
            created_at=created,
        )
        n_exec = min(25, 3 + int(rng.expovariate(1 / 7)))
        moment = created
        for j in range(n_exec):
            duration = _execution_ms(rng)
            moment = min(now, moment + timedelta(seconds=rng.randint(4, 600)))
            prompt, response = exchange(rng)
            tokens = _tokens(rng)
            last = j == n_exec - 1
            if last and status == "timeout":
                duration, response = 600_000, None
            elif last and status in {"failed", "cancelled"}:
                response = None
            plan.executions.append(
                ExecutionHistory(
                    session_id=session.session_id,
                    prompt=prompt,
                    response=response,
                    tokens_used=tokens if response is not None else None,
                    execution_time_ms=duration,
                    created_at=moment,
                )
            )
            moment = min(now, moment + timedelta(milliseconds=duration))
        session.updated_at = moment
        error_code = rng.choice(["sandbox_crashed", "upstream_5xx", "context_length_exceeded"])
        if status == "timeout":
            session.metadata["error"] = {"code": "timeout", "after_ms": 600_000}
        elif status == "failed":
            session.metadata["error"] = {"code": error_code}
        plan.sessions.append(session)

        if rng.random() < 0.45:
            for _ in range(rng.randint(1, 4)):
                executed = min(now, created + timedelta(seconds=rng.randint(30, 3600)))
                if rng.random() < 0.15:
                    sql, error = rng.choice(SANDBOX_ERRORS)
                    result = None
                else:
                    sql, columns = rng.choice(SANDBOX_QUERIES)
                    error, result = None, sandbox_result(rng, columns, executed)
                plan.sandbox.append(
                    SandboxExecution(
                        session_id=session.session_id,
                        sql_query=sql,
                        result=result,
                        error=error,
                        executed_at=executed,
                    )
                )


def plan_cache(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    seen: set[tuple[str, str]] = set()
    while len(plan.cache) < 240:
        tool, args, result = mcp_entry(rng)
        key = (tool, json.dumps(args, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        ttl = timedelta(seconds=rng.choice(CACHE_TTLS))
        roll = rng.random()
        if roll < 0.34:  # expired
            expires = now - timedelta(minutes=rng.randint(1, 20 * 1440))
            cached, expires_at = expires - ttl, expires
        elif roll < 0.46:  # never expires
            cached, expires_at = now - timedelta(minutes=rng.randint(1, 30 * 1440)), None
        else:  # still valid
            expires = now + timedelta(seconds=rng.randint(60, int(ttl.total_seconds())))
            cached, expires_at = expires - ttl, expires
        plan.cache.append(
            McpCache(
                tool_name=tool,
                arguments=args,
                result=result,
                cached_at=cached,
                expires_at=expires_at,
            )
        )
