"""Helpers for the audit, roles and hardening tests: role users and real logins."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.forms import MultiWidget
from django.test import Client
from django.urls import reverse

from audit.models import ActivityLog, SecurityEvent
from tests.admin.support import admin_url  # noqa: F401  (re-exported for the audit tests)

PASSWORD = "correct-Horse-battery-9"


def make_user(email: str, role: str | None = None, **extra):
    User = get_user_model()
    extra.setdefault("is_staff", True)
    user = User.objects.create_user(email=email, password=PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def login(email: str, password: str = PASSWORD, client: Client | None = None, **headers):
    """Log in through the admin's login form (so axes and the signals run)."""
    client = client or Client()
    response = client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "next": "/admin/"},
        **headers,
    )
    return client, response


def activity(**filters) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(**filters).order_by("created_at", "id"))


def events(**filters) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(**filters).order_by("created_at", "id"))


def form_data(response) -> dict:
    """POST data that resubmits the admin form (and inline formsets) of a rendered page."""
    data: dict = {}
    context = response.context
    forms = [context["adminform"].form]
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            if field.disabled:
                continue
            value = form[name].value()
            key = form.add_prefix(name)
            widget = getattr(field.widget, "widget", field.widget)  # related-field wrapper
            if isinstance(widget, MultiWidget):
                parts = value if isinstance(value, list) else widget.decompress(value)
                assert parts is not None  # a MultiWidget decompresses into a list
                for i, part in enumerate(parts):
                    data[f"{key}_{i}"] = "" if part is None else str(part)
            elif isinstance(value, bool) or getattr(widget, "input_type", None) == "checkbox":
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            elif value is not None:
                data[key] = str(value)
    return data


def sample_objects(owner) -> dict:
    """One object of every model the admin shows, keyed by model class."""
    import datetime
    import uuid
    from decimal import Decimal

    from axes.models import AccessAttempt
    from django.utils import timezone

    from accounts.models import Company, OAuthAccount
    from analytics.models import SystemMetric, UserSession
    from audit.services import record_activity, record_security_event
    from core.models import (
        Automation,
        CodexSession,
        ExecutionHistory,
        ExecutionHour,
        McpCache,
        Project,
        SandboxExecution,
    )

    company = Company.objects.create(name="Sample Co", domain="sample.example")
    project = Project.objects.create(name="Sample project", company=company, owner=owner)
    session = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u-1", model="gpt-5-codex", status="completed"
    )
    # The objects under test depend on nothing else, so deleting one cascades into
    # nothing (the owner owns a project, PROTECT; the session has executions).
    objects = [
        get_user_model().objects.create_user(email="sample@example.com", password=PASSWORD),
        company,
        OAuthAccount.objects.create(user=owner, provider="google", provider_account_id="g-1"),
        project,
        Automation.objects.create(name="Sample hook", type="n8n", project=project),
        CodexSession.objects.create(
            session_id=uuid.uuid4(), user_id="u-2", model="gpt-5-codex", status="running"
        ),
        ExecutionHistory.objects.create(session=session, prompt="hi", response="hello"),
        SandboxExecution.objects.create(session=session, sql_query="select 1"),
        McpCache.objects.create(tool_name="search", arguments={"q": "x"}, result={"ok": 1}),
        ExecutionHour.objects.create(
            hour=timezone.now().replace(minute=0, second=0, microsecond=0)
            - datetime.timedelta(hours=2),
            executions=3,
            tokens=120,
            time_ms=4500,
        ),
        UserSession.objects.create(user=owner, ip_address="192.0.2.1"),
        SystemMetric.objects.create(metric_name="cpu", metric_value=Decimal("0.5")),
        record_activity(action="sample"),
        record_security_event(event_type="logout"),
        Group.objects.create(name="Sample group"),
        # (the company is referenced by the project: deleting it cascades to it, allowed)
        AccessAttempt.objects.create(
            username="x@example.com",
            ip_address="192.0.2.9",
            user_agent="ua",
            get_data="",
            post_data="",
            http_accept="*/*",
            path_info="/admin/login/",
            failures_since_start=1,
            attempt_time=timezone.now(),
        ),
    ]
    return {type(obj): obj for obj in objects}
