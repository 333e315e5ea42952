"""The portal's admin site: a dashboard index and models grouped the way people think.

Extra pages (diagnostics) are added in :meth:`PortalAdminSite.get_urls`, before the
admin's own URLs, which end with a catch-all.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.timesince import timesince
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

from portal.admin.display import (
    change_url,
    changelist_url,
    compact,
    duration_ms,
    preview,
    status_badge,
)
from portal.limits import degrade

#: App dicts built per process, by the permission answers that led to them (see
#: PortalAdminSite._app_dict); a full cache is emptied and starts again.
MAX_APP_DICTS = 256
_app_dicts: dict[tuple, dict] = {}

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
    url = changelist_url(app_label, model_name)
    return f"{url}?{urlencode(params)}" if params else url


class PortalAutocompleteJsonView(AutocompleteJsonView):
    """Autocomplete answers labelled by the ModelAdmin's ``autocomplete_label(obj)`` when
    it has one (two projects of the same name in two companies must be told apart)."""

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        label = getattr(self.model_admin, "autocomplete_label", None)
        if label is not None:
            result["text"] = str(label(obj))
        return result


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

    def password_change(self, request: HttpRequest, extra_context: dict | None = None):
        # The user's own new password and its audit entries commit or roll back together.
        with transaction.atomic():
            return super().password_change(request, extra_context)

    def autocomplete_view(self, request: HttpRequest):
        return PortalAutocompleteJsonView.as_view(admin_site=self)(request)

    # --- The app list: built once per request, its names and URLs once per process ----

    def _build_app_dict(self, request: HttpRequest, label: str | _StrPromise | None = None) -> dict:
        # The sidebar (each_context) and the dashboard both ask for it; each build
        # checks every model's permissions and reverses two URLs per model.
        built = request.__dict__.setdefault("_portal_app_dicts", {})
        if label not in built:
            built[label] = self._app_dict(request, label)
        return built[label]

    def _app_dict(self, request: HttpRequest, label: str | _StrPromise | None) -> dict:
        """Django's app dict, whose only inputs are the user's permission answers, the
        registry and the URLconf: the permissions are asked on every request; the dict
        they lead to (names still lazy, so in any language; about fifty reversed URLs)
        is built once per distinct set of answers and copied out."""
        answers = tuple(
            (
                model._meta.label,
                model_admin.has_module_permission(request)
                and tuple(model_admin.get_model_perms(request).items()),
            )
            for model, model_admin in self._registry.items()
            if not label or model._meta.app_label == label
        )
        key = (str(label or ""), answers, get_script_prefix(), get_urlconf())
        found = _app_dicts.get(key)
        if found is None:
            found = super()._build_app_dict(request, label)
            if len(_app_dicts) >= MAX_APP_DICTS:
                _app_dicts.clear()
            _app_dicts[key] = found
        # Copies: callers sort and regroup the lists and may add to the dicts.
        return {
            app_label: {
                **app,
                "models": [{**m, "perms": dict(m["perms"])} for m in app["models"]],
            }
            for app_label, app in found.items()
        }

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
        from core.models import SESSION_STATUSES
        from core.story import failure_reason

        labels = dict(SESSION_STATUSES)

        user = request.user
        window = selectors.Window.starting(timezone.now())
        since_today = window.today.date().isoformat()
        since_week = window.week_ago.date().isoformat()
        since_day = _minute(window.day_ago)
        context: dict[str, Any] = {"window": window, "diagnostics_url": self.diagnostics_url()}

        if user.has_perm("core.view_codexsession"):
            with degrade(
                context,
                "sessions",
                tables=[
                    'core"."session_status_hours',
                    'core"."session_status_changes',
                    'core"."codex_sessions',
                ],
            ):
                statuses = selectors.sessions_by_status(window)
                context["sessions"] = {
                    "rows": [
                        {
                            "badge": status_badge(s.status, labels.get(s.status)),
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
            # The charts first: they compute the newest missing hours, which the
            # 24-hour card then finds stored.
            self.add_charts(request, context, window)
            with degrade(
                context, "executions", tables=['core"."execution_history', 'core"."execution_hours']
            ):
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
                            "url": change_url("core", "executionhistory", e.pk),
                            "session": e.session_id,
                            "session_url": change_url("core", "codexsession", e.session_id),
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
        if user.has_perm("core.view_codexsession"):
            with degrade(context, "failed_sessions", tables=['core"."codex_sessions']):
                context["failed_sessions"] = [
                    {
                        "id": str(s.pk),
                        "url": change_url("core", "codexsession", s.pk),
                        "badge": status_badge(s.status, labels.get(s.status)),
                        "reason": (
                            reason.summary if (reason := failure_reason(s.metadata)) else ""
                        ),
                        "model": s.model,
                        # Formatted here, not by a blocktranslate per row in the template.
                        "ago": gettext("%(ago)s ago") % {"ago": timesince(s.created_at)},
                    }
                    for s in selectors.latest_failed_sessions()
                ]
            context["failed_sessions_url"] = _changelist("core.CodexSession", status="failed")
        if user.has_perm("core.view_sandboxexecution"):
            with degrade(context, "sandbox", tables=['core"."sandbox_executions']):
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
                            "url": change_url("core", "sandboxexecution", run.pk),
                            "error": preview(run.error_head, 90),
                            "sql": preview(run.sql_head, 60),
                            "executed_at": run.executed_at,
                        }
                        for run in failures["latest"]
                    ],
                }
        if user.has_perm("core.view_mcpcache"):
            with degrade(context, "cache", tables=['core"."mcp_cache']):
                context["cache"] = {
                    "expired": str(selectors.expired_cache_entries(window.now)),
                    "url": _changelist("core.McpCache", expired="yes"),
                    "purge_url": reverse("admin:core_mcpcache_purge_expired", current_app=self.name)
                    if user.has_perm("core.delete_mcpcache")
                    else None,
                }
        return context

    def add_charts(self, request: HttpRequest, context: dict[str, Any], window) -> None:
        """The week's charts as ``context["charts_html"]``, or ``context["charts"]`` as
        the panel's Unavailable.

        The markup is cached once every hour of the week is stored: the execution
        rollup's stored hours never change, so the same key (database, last settled
        hour, language, zone, whether the failures chart is shown) always renders the
        same executions and tokens. The failures of those hours can still change (a
        session's status changes after its hour), so the markup is kept for
        ``CHARTS_CACHE_SECONDS`` only. Drawing the charts costs more than reading any
        other panel's figures.
        """
        from core import selectors

        failures = request.user.has_perm("core.view_codexsession")
        key = ":".join(
            [
                "portal:dashboard-charts",
                selectors.hourly_totals_key(window),
                str(get_language()),
                timezone.get_current_timezone_name(),
                "failures" if failures else "",
            ]
        )
        markup = cache.get(key)
        if markup is not None:
            context["charts_html"] = markup
            return
        with degrade(
            context,
            "charts",
            tables=[
                'core"."execution_hours',
                'core"."execution_history',
                'core"."session_status_hours',
                'core"."session_status_changes',
            ],
        ):
            charts = self.hourly_charts(window, failures=failures)
            markup = render_to_string("admin/portal/_dashboard_charts.html", {"charts": charts})
            if not charts["missing_hours"]:
                cache.set(key, markup, selectors.CHARTS_CACHE_SECONDS)
            context["charts_html"] = markup

    def hourly_charts(self, window, *, failures: bool) -> dict[str, Any]:
        """The last 7 days per hour: executions, tokens and (with ``failures``) failed
        sessions, as server-side SVG (diagnostics.charts) from the hourly rollup."""
        from core import selectors
        from diagnostics.charts import Series, line_chart

        hours = selectors.hourly_totals(window)
        known = [(hour, t) for hour, t in hours.items() if t is not None]
        charts = [
            line_chart(
                str(_("Executions per hour, last 7 days")),
                [Series(str(_("executions")), tuple((h, float(t.executions)) for h, t in known))],
                lambda v: compact(int(v)),
            ),
            line_chart(
                str(_("Tokens per hour, last 7 days")),
                [Series(str(_("tokens")), tuple((h, float(t.tokens)) for h, t in known))],
                lambda v: compact(int(v)),
            ),
        ]
        if failures and hours:
            first = min(hours)
            failed = selectors.failed_sessions_by_hour(first, max(hours) + selectors.HOUR)
            charts.append(
                line_chart(
                    str(_("Failed or timed-out sessions per hour, last 7 days")),
                    [Series(str(_("failed")), tuple((h, float(failed.get(h, 0))) for h in hours))],
                    lambda v: number_format(int(v), force_grouping=True),
                )
            )
        return {"charts": charts, "missing_hours": len(hours) - len(known)}

    def diagnostics_url(self) -> str:
        return reverse("admin:diagnostics", current_app=self.name)


def _minute(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).replace(second=0, microsecond=0).isoformat("T", "minutes")
