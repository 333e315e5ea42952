"""The portal's admin site: a dashboard index and models grouped the way people think.

Extra pages (diagnostics) are added in :meth:`PortalAdminSite.get_urls`, before the
admin's own URLs, which end with a catch-all.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

from portal.admin.display import compact, duration_ms, preview, status_badge

#: (slug, heading, model labels in display order). Models not listed join the group of
#: their app (``APP_GROUPS``), after the listed ones; other apps get a group of their own.
MODEL_GROUPS: list[tuple[str, str | _StrPromise, list[str]]] = [
    (
        "agent-sessions",
        _("Agent sessions"),
        ["core.CodexSession", "core.ExecutionHistory", "core.SandboxExecution", "core.McpCache"],
    ),
    ("accounts", _("Accounts"), ["accounts.User", "accounts.Company", "accounts.OAuthAccount"]),
    ("projects", _("Projects"), ["core.Project", "core.Automation"]),
    ("analytics", _("Analytics"), ["analytics.UserSession", "analytics.SystemMetric"]),
    ("audit", _("Audit"), ["audit.ActivityLog", "audit.SecurityEvent"]),
]
APP_GROUPS = {
    "core": "agent-sessions",
    "accounts": "accounts",
    "auth": "accounts",
    "analytics": "analytics",
    "audit": "audit",
}


def _changelist(label: str, **params: Any) -> str:
    app_label, model_name = label.lower().split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


class PortalAdminSite(admin.AdminSite):
    site_url = None  # the portal has no public site to "view"
    site_header = _("Agent Gateway Portal")
    site_title = _("Agent Gateway Portal")
    index_title = _("Dashboard")
    index_template = "admin/portal/dashboard.html"

    def extra_urls(self) -> list[URLPattern]:
        """URLs of the portal's own admin pages, each wrapped in ``self.admin_view``."""
        from accounts.preferences import preferences_urls
        from diagnostics.urls import diagnostics_urls

        return [*diagnostics_urls(self), *preferences_urls(self)]

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [*self.extra_urls(), *super().get_urls()]

    # --- The app list is built once per request ----------------------------------------

    def _build_app_dict(self, request: HttpRequest, label: str | _StrPromise | None = None) -> dict:
        # The sidebar (each_context) and the dashboard both ask for it; each build
        # checks every model's permissions and reverses two URLs per model.
        built = request.__dict__.setdefault("_portal_app_dicts", {})
        if label not in built:
            built[label] = super()._build_app_dict(request, label)
        return built[label]

    # --- Models grouped by what they are about, not by Django app --------------------

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = self._build_app_dict(request, app_label)
        if not apps:
            return []
        models_by_label: dict[str, tuple[dict, dict]] = {}
        for app in apps.values():
            for model in app["models"]:
                models_by_label[model["model"]._meta.label] = (app, model)

        groups: dict[str, dict] = {}

        def group(slug: str, name: str | _StrPromise, app: dict) -> dict:
            if slug not in groups:
                groups[slug] = {
                    "name": name,
                    "app_label": slug,
                    "app_url": app["app_url"],
                    "has_module_perms": app["has_module_perms"],
                    "models": [],
                }
            return groups[slug]

        for slug, name, labels in MODEL_GROUPS:
            for label in labels:
                if label in models_by_label:
                    app, model = models_by_label.pop(label)
                    group(slug, name, app)["models"].append(model)
        names = {slug: name for slug, name, _ in MODEL_GROUPS}
        for _label, (app, model) in sorted(models_by_label.items()):
            slug = APP_GROUPS.get(app["app_label"], app["app_label"])
            group(slug, names.get(slug, app["name"]), app)["models"].append(model)

        order = [slug for slug, _, _ in MODEL_GROUPS]
        return sorted(
            groups.values(),
            key=lambda g: (
                order.index(g["app_label"]) if g["app_label"] in order else len(order),
                g["name"].lower(),
            ),
        )

    # --- The dashboard -----------------------------------------------------------------

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        context = {**self.dashboard_context(request), **(extra_context or {})}
        return super().index(request, context)

    def dashboard_context(self, request: HttpRequest) -> dict[str, Any]:
        """The figures a user may see (by view permission), each with its list link."""
        from core import selectors

        user = request.user
        window = selectors.Window.starting(timezone.now())
        since_today = window.today.date().isoformat()
        since_week = window.week_ago.date().isoformat()
        since_day = _minute(window.day_ago)
        context: dict[str, Any] = {"window": window, "diagnostics_url": self.diagnostics_url()}

        if user.has_perm("core.view_codexsession"):
            statuses = selectors.sessions_by_status(window)
            context["sessions"] = {
                "rows": [
                    {
                        "badge": status_badge(s.status),
                        "today": number_format(s.today, force_grouping=True),
                        "week": number_format(s.week, force_grouping=True),
                        "today_url": _changelist(
                            "core.CodexSession", status=s.status, created_at__gte=since_today
                        ),
                        "week_url": _changelist(
                            "core.CodexSession", status=s.status, created_at__gte=since_week
                        ),
                    }
                    for s in statuses
                ],
                "today": number_format(sum(s.today for s in statuses), force_grouping=True),
                "week": number_format(sum(s.week for s in statuses), force_grouping=True),
                "today_url": _changelist("core.CodexSession", created_at__gte=since_today),
                "week_url": _changelist("core.CodexSession", created_at__gte=since_week),
            }
        if user.has_perm("core.view_executionhistory"):
            totals = selectors.execution_window(window)
            context["executions"] = {
                "count": compact(totals.executions),
                "count_full": number_format(totals.executions, force_grouping=True),
                "tokens": compact(totals.tokens),
                "tokens_full": number_format(totals.tokens, force_grouping=True),
                "time": duration_ms(totals.time_ms),
                "url": _changelist("core.ExecutionHistory", created_at__gte=since_day),
                "slow_url": _changelist(
                    "core.ExecutionHistory", created_at__gte=since_day, time="5"
                ),
                "slowest": [
                    {
                        "id": e.pk,
                        "url": reverse("admin:core_executionhistory_change", args=[e.pk]),
                        "session": e.session_id,
                        "session_url": reverse(
                            "admin:core_codexsession_change", args=[e.session_id]
                        ),
                        "prompt": preview(e.prompt_head, 70),
                        "time": duration_ms(e.execution_time_ms),
                        "tokens": "—"
                        if e.tokens_used is None
                        else number_format(e.tokens_used, force_grouping=True),
                        "created_at": e.created_at,
                    }
                    for e in selectors.slowest_executions(window)
                ],
            }
        if user.has_perm("core.view_sandboxexecution"):
            failures = selectors.failed_sandbox_runs(window)
            context["sandbox"] = {
                "day": str(failures["day"]),
                "week": str(failures["week"]),
                "day_url": _changelist(
                    "core.SandboxExecution", outcome="failed", executed_at__gte=since_day
                ),
                "week_url": _changelist(
                    "core.SandboxExecution", outcome="failed", executed_at__gte=since_week
                ),
                "latest": [
                    {
                        "id": run.pk,
                        "url": reverse("admin:core_sandboxexecution_change", args=[run.pk]),
                        "error": preview(run.error_head, 90),
                        "sql": preview(run.sql_head, 60),
                        "executed_at": run.executed_at,
                    }
                    for run in failures["latest"]
                ],
            }
        if user.has_perm("core.view_mcpcache"):
            context["cache"] = {
                "expired": str(selectors.expired_cache_entries(window.now)),
                "url": _changelist("core.McpCache", expired="yes"),
                "purge_url": reverse("admin:core_mcpcache_purge_expired", current_app=self.name)
                if user.has_perm("core.delete_mcpcache")
                else None,
            }
        return context

    def diagnostics_url(self) -> str:
        return reverse("admin:diagnostics", current_app=self.name)


def _minute(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).replace(second=0, microsecond=0).isoformat("T", "minutes")
