"""Admin for projects, automations and the agent gateway's tables.

The agent tables (sessions, execution history, sandbox runs, tool cache) grow to tens
of millions of rows: every list here orders and filters through an index, counts by
estimate (see portal/admin/estimates.py), and shows only columns that are cheap per page.
"""

from __future__ import annotations

import functools
from typing import cast
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import get_script_prefix, get_urlconf, path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.services import record_cache_purge
from portal.admin.base import PortalModelAdmin, ReadOnlyModelAdmin
from portal.admin.changelist import (
    PortalChangeList,
    is_changelist_request,
    is_query_canceled,
    parse_uuid,
    set_local,
)
from portal.admin.display import (
    duration_ms,
    formatted_sql,
    pretty_json,
    preview,
    readable_text,
    status_badge,
)
from portal.admin.estimates import count_rows
from portal.admin.filters import BucketFilter, ChoicesFilter, DateRangeFilter, IndexedValuesFilter

from . import selectors, services
from .models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    ExecutionHour,
    McpCache,
    Project,
    SandboxExecution,
)
from .search import (
    TIME_BUCKETS,
    TOKEN_BUCKETS,
    search_query,
    time_bucket,
    token_bucket,
)


def _changelist_url(model, **params: str) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


@functools.cache
def _change_url_pattern(name: str, prefix: str, urlconf: str | None) -> str:
    return reverse(name, args=["__pk__"], urlconf=urlconf)


def _change_url(model, pk) -> str:
    # Reversed once per model, not once per row: a page shows fifty rows.
    opts = model._meta
    pattern = _change_url_pattern(
        f"admin:{opts.app_label}_{opts.model_name}_change", get_script_prefix(), get_urlconf()
    )
    return pattern.replace("__pk__", quote(str(pk)))


def session_link(session_id) -> str:
    if session_id is None:
        return "—"
    return format_html(
        '<a class="portal-mono" href="{}" title="{}">{}…</a>',
        _change_url(CodexSession, session_id),
        session_id,
        str(session_id)[:8],
    )


# --- Projects -----------------------------------------------------------------------


@admin.register(Project)
class ProjectAdmin(PortalModelAdmin):
    list_display = ["name", "company", "owner", "status", "created_at"]
    list_filter = ["status", ("created_at", DateRangeFilter)]
    list_select_related = ["company", "owner"]
    search_fields = ["name", "company__name", "owner__email"]
    autocomplete_fields = ["company", "owner"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "status"]}),
        (_("Ownership"), {"fields": ["company", "owner"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]


@admin.register(Automation)
class AutomationAdmin(PortalModelAdmin):
    list_display = ["name", "type", "project", "is_active", "created_at"]
    list_filter = ["type", "is_active", ("created_at", DateRangeFilter)]
    list_select_related = ["project"]
    search_fields = ["name", "project__name"]
    autocomplete_fields = ["project"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "type", "project", "is_active"]}),
        (
            _("Configuration"),
            {
                "fields": ["config"],
                "description": _("JSON. Invalid JSON is refused with a message; nothing is saved."),
            },
        ),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]


# --- Agent sessions -----------------------------------------------------------------


@admin.register(CodexSession)
class CodexSessionAdmin(PortalModelAdmin):
    list_display = [
        "session_col",
        "user_id",
        "model",
        "status_col",
        "executions_col",
        "tokens_col",
        "time_col",
        "created_at",
    ]
    list_display_links = ["session_col"]
    list_filter = [
        ("status", IndexedValuesFilter),
        ("model", IndexedValuesFilter),
        ("created_at", DateRangeFilter),
    ]
    # Only orderings an index serves: (created_at) for the list, the pk for ties.
    sortable_by = ["created_at"]
    search_fields = ["user_id"]  # the search box; get_search_results does the work
    search_help_text = _("An exact session id (UUID) or user id.")
    readonly_fields = [
        "session_id",
        "user_id",
        "model",
        "usage_summary",
        "metadata_pretty",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["session_id", "user_id", "model", "status"]}),
        (_("Usage"), {"fields": ["usage_summary"]}),
        (_("Metadata"), {"fields": ["metadata_pretty"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]
    latest_executions_shown = 20

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request).annotate(**selectors.session_usage_annotations())
        if is_changelist_request(request):
            # The list never shows the metadata: don't fetch and parse fifty JSON documents.
            qs = qs.defer("metadata")
        return qs

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term or len(term) > self.max_search_length:
            return super().get_search_results(request, queryset, term)
        uuid = parse_uuid(term)
        if uuid is not None:
            return queryset.filter(Q(pk=uuid) | Q(user_id=term)), False
        return queryset.filter(user_id=term), False

    # The gateway creates sessions; their executions would cascade on delete.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("session"), ordering="pk")
    def session_col(self, obj: CodexSession) -> str:
        return format_html(
            '<span class="portal-mono" title="{}">{}</span>', obj.pk, str(obj.pk)[:8] + "…"
        )

    @admin.display(description=_("status"))
    def status_col(self, obj: CodexSession) -> str:
        return status_badge(obj.status)

    @staticmethod
    def _usage(obj: CodexSession) -> dict:
        return getattr(obj, "usage", None) or {"executions": 0, "tokens": 0, "time_ms": 0}

    @admin.display(description=_("executions"))
    def executions_col(self, obj: CodexSession) -> str:
        count = self._usage(obj)["executions"]
        if not count:
            return "0"
        return format_html(
            '<a href="{}?session={}">{}</a>', self._executions_url(), obj.pk, f"{count:,}"
        )

    @staticmethod
    @functools.cache
    def _executions_url_for(prefix: str, urlconf: str | None) -> str:
        return reverse("admin:core_executionhistory_changelist", urlconf=urlconf)

    def _executions_url(self) -> str:
        return self._executions_url_for(get_script_prefix(), get_urlconf())

    @admin.display(description=_("tokens"))
    def tokens_col(self, obj: CodexSession) -> str:
        return f"{self._usage(obj)['tokens']:,}"

    @admin.display(description=_("total time"))
    def time_col(self, obj: CodexSession) -> str:
        return duration_ms(self._usage(obj)["time_ms"])

    @admin.display(description=_("usage"))
    def usage_summary(self, obj: CodexSession) -> str:
        usage = self._usage(obj)
        return _("%(executions)s executions · %(tokens)s tokens · %(time)s in total") % {
            "executions": number_format(usage["executions"], force_grouping=True),
            "tokens": number_format(usage["tokens"], force_grouping=True),
            "time": duration_ms(usage["time_ms"]),
        }

    @admin.display(description=_("metadata"))
    def metadata_pretty(self, obj: CodexSession) -> str:
        return pretty_json(obj.metadata)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        session_id = parse_uuid(object_id)
        if session_id is not None:
            executions = selectors.session_executions(session_id)
            extra_context.update(
                latest_executions=selectors.latest_executions(
                    session_id, limit=self.latest_executions_shown
                ),
                executions_count=count_rows(executions),
                executions_url=_changelist_url(ExecutionHistory, session=str(session_id)),
            )
        return super().change_view(request, object_id, form_url, extra_context)


class SessionFilter(admin.SimpleListFilter):
    """Rows of one session (``?session=<uuid>``); shown only while it is active."""

    title = _("session")
    parameter_name = "session"

    def lookups(self, request, model_admin):
        uuid = parse_uuid(self.value() or "")
        return [(str(uuid), f"{str(uuid)[:8]}…")] if uuid else []

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        uuid = parse_uuid(value)
        if uuid is None:
            from django.contrib.admin.options import IncorrectLookupParameters

            raise IncorrectLookupParameters("session must be a UUID")
        return queryset.filter(session_id=uuid)


class TokenBucketFilter(BucketFilter):
    title = _("tokens used")
    parameter_name = "tokens"
    buckets = [(0, _("not recorded"))] + [(b, label) for b, label, _, _ in TOKEN_BUCKETS]

    def expression(self):
        return token_bucket()


class TimeBucketFilter(BucketFilter):
    title = _("execution time")
    parameter_name = "time"
    buckets = [(0, _("not recorded"))] + [(b, label) for b, label, _, _ in TIME_BUCKETS]

    def expression(self):
        return time_bucket()


class SearchChangeList(PortalChangeList):
    """Execution-history search: newest matches first, without a pathological plan.

    PostgreSQL has two ways to answer "newest 50 rows matching these words": walk the
    created_at index testing each row (fast when the words are common, hopeless when
    they match almost nothing: every row of the table gets tested) or collect every
    match through the full-text index and sort (fast when matches are few, slow when
    they are hundreds of thousands). Its estimate for full-text conditions cannot be
    trusted to choose, so the walk gets a short time limit, and the full-text index
    answers when the walk runs out of it.
    """

    walk_timeout = "400ms"
    #: Below this many estimated matches, collecting them all is cheap: skip the walk.
    few_matches = 20_000

    def fetch_page(self) -> int:
        if not self.query:
            return super().fetch_page()
        using = self.queryset.db
        if self.row_count.value >= self.few_matches:
            try:
                with transaction.atomic(using=using):
                    set_local("statement_timeout", self.walk_timeout, using)
                    rows = len(self.result_list)
                    set_local("statement_timeout", self.model_admin.list_statement_timeout, using)
                return rows
            except OperationalError as exc:
                if not is_query_canceled(exc):
                    raise
        with transaction.atomic(using=using):
            set_local("enable_indexscan", "off", using)
            # An exact (not lossy) bitmap: no re-parsing of every row on a matching page.
            set_local("work_mem", "64MB", using)
            rows = len(self.result_list)
            set_local("enable_indexscan", "on", using)
        return rows


@admin.register(ExecutionHistory)
class ExecutionHistoryAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "session_col", "prompt_col", "tokens_col", "time_col", "created_at"]
    list_display_links = ["id"]
    list_filter = [
        ("created_at", DateRangeFilter),
        SessionFilter,
        TokenBucketFilter,
        TimeBucketFilter,
    ]
    sortable_by = ["created_at"]
    search_fields = ["prompt"]  # the search box; get_search_results does the work
    search_help_text = _(
        'Words in the prompt or response (full text: "exact phrase", -without, or); '
        "a number finds that execution, a UUID the executions of that session."
    )
    fields = [
        "session_col",
        "created_at",
        "tokens_col",
        "time_col",
        "prompt_text",
        "response_text",
    ]

    def get_changelist(self, request, **kwargs):
        return SearchChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The list shows a preview of the prompt: never fetch whole prompts and
        # responses (kilobytes each) for fifty rows.
        qs = super().get_queryset(request)
        if is_changelist_request(request):
            qs = qs.defer("prompt", "response").annotate(prompt_head=Left("prompt", 160))
        return qs

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term or len(term) > self.max_search_length:
            return super().get_search_results(request, queryset, term)
        uuid = parse_uuid(term)
        if uuid is not None:
            return queryset.filter(session_id=uuid), False
        condition = Q(search_document=search_query(term))
        if term.isdigit() and len(term) < 19:
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False

    @admin.display(description=_("session"))
    def session_col(self, obj: ExecutionHistory) -> str:
        return session_link(obj.session_id)

    @admin.display(description=_("prompt"))
    def prompt_col(self, obj: ExecutionHistory) -> str:
        head = getattr(obj, "prompt_head", None)
        return preview(head if head is not None else obj.prompt)

    @admin.display(description=_("tokens"))
    def tokens_col(self, obj: ExecutionHistory) -> str:
        return "—" if obj.tokens_used is None else f"{obj.tokens_used:,}"

    @admin.display(description=_("time"))
    def time_col(self, obj: ExecutionHistory) -> str:
        return duration_ms(obj.execution_time_ms)

    @admin.display(description=_("prompt"))
    def prompt_text(self, obj: ExecutionHistory) -> str:
        return readable_text(obj.prompt)

    @admin.display(description=_("response"))
    def response_text(self, obj: ExecutionHistory) -> str:
        return readable_text(obj.response)


# --- Sandbox runs and tool cache ----------------------------------------------------


class OutcomeFilter(ChoicesFilter):
    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("failed", _("Failed (error)")), ("succeeded", _("Succeeded"))]

    def queryset(self, request, queryset):
        value = self.clean_value()
        if value == "failed":
            return queryset.filter(error__isnull=False)
        if value == "succeeded":
            return queryset.filter(error__isnull=True)
        return queryset


@admin.register(SandboxExecution)
class SandboxExecutionAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "session_col", "sql_col", "outcome_col", "executed_at"]
    list_display_links = ["id"]
    list_filter = [OutcomeFilter, ("executed_at", DateRangeFilter)]
    sortable_by = ["executed_at"]
    search_fields = ["id"]  # the search box; get_search_results does the work
    search_help_text = _("A run id, or a session id (UUID) for that session's runs.")
    fields = [
        "session_col",
        "executed_at",
        "outcome_col",
        "sql_pretty",
        "error_text",
        "result_pretty",
    ]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if is_changelist_request(request):
            qs = qs.defer("result", "sql_query", "error").annotate(
                sql_head=Left("sql_query", 160), error_head=Left("error", 1)
            )
        return qs

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term:
            return queryset, False
        uuid = parse_uuid(term)
        if uuid is not None:
            return queryset.filter(session_id=uuid), False
        if term.isdigit() and len(term) < 19:
            return queryset.filter(pk=int(term)), False
        return queryset.none(), False

    def _failed(self, obj: SandboxExecution) -> bool:
        head = getattr(obj, "error_head", None)
        return (head if "error_head" in obj.__dict__ else obj.error) is not None

    @admin.display(description=_("session"))
    def session_col(self, obj: SandboxExecution) -> str:
        return session_link(obj.session_id)

    @admin.display(description="SQL")
    def sql_col(self, obj: SandboxExecution) -> str:
        head = getattr(obj, "sql_head", None)
        return format_html(
            '<span class="portal-mono">{}</span>',
            preview(head if head is not None else obj.sql_query, 100),
        )

    @admin.display(description=_("outcome"))
    def outcome_col(self, obj: SandboxExecution) -> str:
        if self._failed(obj):
            return format_html('<span class="portal-badge portal-bad">{}</span>', _("error"))
        return format_html('<span class="portal-badge portal-ok">{}</span>', _("ok"))

    @admin.display(description="SQL")
    def sql_pretty(self, obj: SandboxExecution) -> str:
        return formatted_sql(obj.sql_query)

    @admin.display(description=_("error"))
    def error_text(self, obj: SandboxExecution) -> str:
        if obj.error is None:
            return "—"
        return format_html('<pre class="portal-pre portal-error">{}</pre>', obj.error)

    @admin.display(description=_("result"))
    def result_pretty(self, obj: SandboxExecution) -> str:
        return pretty_json(obj.result)


class ExpiryFilter(ChoicesFilter):
    title = _("expiry")
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", _("Expired")), ("no", _("Still valid")), ("never", _("Never expires"))]

    def queryset(self, request, queryset):
        value = self.clean_value()
        now = timezone.now()
        if value == "yes":
            return queryset.filter(expires_at__lt=now)
        if value == "no":
            return queryset.filter(expires_at__gte=now)
        if value == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(McpCache)
class McpCacheAdmin(PortalModelAdmin):
    list_display = ["tool_name", "cached_at", "expires_at", "state_col"]
    list_filter = [
        ExpiryFilter,
        ("tool_name", IndexedValuesFilter),
        ("cached_at", DateRangeFilter),
    ]
    sortable_by = ["cached_at", "expires_at"]
    search_fields = ["tool_name"]  # the search box; get_search_results does the work
    search_help_text = _("An exact tool name.")
    fields = [
        "tool_name",
        "cached_at",
        "expires_at",
        "state_col",
        "arguments_pretty",
        "result_pretty",
    ]
    # The same list; mypy types ``fields`` as the stubs' field groups (lists of names).
    readonly_fields = cast(list[str], fields)
    # Bulk removal is the purge (one DELETE); "delete selected" would load the rows.
    actions = None

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if is_changelist_request(request):
            qs = qs.defer("arguments", "result")
        return qs

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term or len(term) > self.max_search_length:
            return super().get_search_results(request, queryset, term)
        return queryset.filter(tool_name=term), False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("state"))
    def state_col(self, obj: McpCache) -> str:
        if obj.expires_at is None:
            return format_html('<span class="portal-badge portal-muted">{}</span>', _("no expiry"))
        if obj.expires_at < timezone.now():
            return format_html('<span class="portal-badge portal-warn">{}</span>', _("expired"))
        return format_html('<span class="portal-badge portal-ok">{}</span>', _("valid"))

    @admin.display(description=_("arguments"))
    def arguments_pretty(self, obj: McpCache) -> str:
        return pretty_json(obj.arguments)

    @admin.display(description=_("result"))
    def result_pretty(self, obj: McpCache) -> str:
        return pretty_json(obj.result)

    def get_urls(self):
        return [
            path(
                "purge-expired/",
                self.admin_site.admin_view(self.purge_expired_view),
                name="core_mcpcache_purge_expired",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_purge": self.has_delete_permission(request),
            "purge_url": reverse(
                "admin:core_mcpcache_purge_expired", current_app=self.admin_site.name
            ),
        }
        return super().changelist_view(request, extra_context)

    def purge_expired_view(self, request: HttpRequest) -> HttpResponse:
        """GET: how many entries have expired, and a confirm button. POST: purge them."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:core_mcpcache_changelist", current_app=self.admin_site.name)
        if request.method == "POST":
            # The purge and its audit entry commit or roll back together.
            with transaction.atomic():
                removed = services.mcp_cache_purge_expired()
                record_cache_purge(deleted=removed, request=request)
            self.message_user(
                request,
                ngettext(
                    "Purged %(count)s expired tool cache entry.",
                    "Purged %(count)s expired tool cache entries.",
                    removed,
                )
                % {"count": number_format(removed)},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(changelist)
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Purge expired tool cache entries"),
            "opts": self.opts,
            "expired": count_rows(McpCache.objects.filter(expires_at__lt=now)),
            "now": now,
            "changelist_url": changelist,
            "expired_url": f"{changelist}?expired=yes",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/core/mcpcache/purge_expired.html", context)


@admin.register(ExecutionHour)
class ExecutionHourAdmin(ReadOnlyModelAdmin):
    """The dashboard's hourly rollup, for checking its figures (derived data)."""

    list_display = ["hour", "executions_col", "tokens_col", "time_col", "computed_at"]
    list_filter = [("hour", DateRangeFilter)]
    sortable_by = ["hour"]
    fields = ["hour", "executions", "tokens", "time_ms", "computed_at"]

    @admin.display(description=_("executions"))
    def executions_col(self, obj: ExecutionHour) -> str:
        return f"{obj.executions:,}"

    @admin.display(description=_("tokens"))
    def tokens_col(self, obj: ExecutionHour) -> str:
        return f"{obj.tokens:,}"

    @admin.display(description=_("agent time"))
    def time_col(self, obj: ExecutionHour) -> str:
        return duration_ms(obj.time_ms)
