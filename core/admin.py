"""Admin for projects, automations and the agent gateway's tables.

The agent tables (sessions, execution history, sandbox runs, tool cache) grow to tens
of millions of rows: every list here orders and filters through an index, counts by
estimate (see portal/admin/estimates.py), and shows only columns that are cheap per page.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Company, User
from audit.models import ActivityLog
from audit.services import record_cache_purge
from portal.admin.base import PortalModelAdmin, ReadOnlyModelAdmin
from portal.admin.changelist import (
    PortalChangeList,
    is_change_page_request,
    is_changelist_request,
    is_csv_export_request,
    is_query_canceled,
    parse_uuid,
    set_local,
    uuid_prefix_q,
)
from portal.admin.display import (
    StrOrPromise,
    change_url,
    changelist_url,
    duration_ms,
    formatted_sql,
    grouped,
    pretty_json,
    preview,
    readable_text,
    related_links,
    result_table,
    status_badge,
)
from portal.admin.estimates import count_rows
from portal.admin.export import CsvColumn
from portal.admin.filters import BucketFilter, ChoicesFilter, DateRangeFilter, IndexedValuesFilter
from portal.limits import degrade

from . import pricing, selectors, services, story
from .models import (
    SESSION_STATUSES,
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
    url = changelist_url(model._meta.app_label, model._meta.model_name)
    return f"{url}?{urlencode(params)}" if params else url


def _change_url(model, pk) -> str:
    return change_url(model._meta.app_label, model._meta.model_name, pk)


#: In the execution search a hex word this long is also taken as a session id prefix
#: (shorter ones are too often plain words: "added", "facade").
SESSION_PREFIX_IN_TEXT_SEARCH = 8


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


def project_label(project: Project) -> str:
    """A project's name with its company's: names repeat across companies."""
    return project_text(project.name, project.company.name)


def project_text(name: str, company_name: str) -> str:
    return f"{name} ({company_name})"


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
        (_("Related"), {"fields": ["related_col"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # The company names the project in pickers (autocomplete_label).
        qs = super().get_queryset(request).select_related("company")
        if is_changelist_request(request):
            # Django's ChangeList applies list_select_related only to a queryset that
            # selects no relation itself: this one does (company), so add the rest here
            # (the owner column would otherwise be one query per row).
            qs = qs.select_related(*self.list_select_related)
        return qs

    @staticmethod
    def autocomplete_label(project: Project) -> str:
        return project_label(project)

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "related_col"]

    @admin.display(description=_("related"))
    def related_col(self, obj: Project) -> str:
        if obj.pk is None:
            return "—"
        return related_links(
            [
                (_("Automations"), _changelist_url(Automation, project=str(obj.pk))),
                (
                    _("Company %(name)s") % {"name": obj.company.name},
                    _change_url(Company, obj.company_id),
                ),
                (
                    _("Owner %(email)s") % {"email": obj.owner.email},
                    _change_url(User, obj.owner_id),
                ),
                (
                    _("Audit entries"),
                    _changelist_url(
                        ActivityLog, resource_type="core.project", resource_id=str(obj.pk)
                    ),
                ),
            ]
        )


@admin.register(Automation)
class AutomationAdmin(PortalModelAdmin):
    list_display = ["name", "type", "project_col", "is_active", "created_at"]
    list_filter = ["type", "is_active", ("created_at", DateRangeFilter)]
    # The list reads the two names it shows (get_queryset), not a project and a company
    # instance per row.
    list_select_related = False
    search_fields = ["name", "project__name"]
    autocomplete_fields = ["project"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if is_changelist_request(request):
            # config is shown on the change page only (and may hold secrets).
            qs = qs.defer("config").annotate(
                project_name=F("project__name"), company_name=F("project__company__name")
            )
        return qs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project" and field is not None:
            field.queryset = field.queryset.select_related("company")
            field.label_from_instance = project_label
        return field

    @admin.display(description=_("project"), ordering="project__name")
    def project_col(self, obj: Automation) -> str:
        name = getattr(obj, "project_name", None)
        label = (
            project_label(obj.project) if name is None else project_text(name, obj.company_name)  # type: ignore[attr-defined]
        )
        return format_html('<a href="{}">{}</a>', _change_url(Project, obj.project_id), label)

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


class CodexSessionForm(forms.ModelForm):
    """Status from the known statuses (plus the current one, if the gateway wrote another)."""

    status = forms.ChoiceField(label=_("Status"))

    class Meta:
        model = CodexSession
        fields = ["status"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices: list[tuple[str, StrOrPromise]] = list(SESSION_STATUSES)
        current = self.instance.status if self.instance else ""
        if current and current not in {value for value, _label in choices}:
            choices.append((current, current))
        status = self.fields["status"]
        assert isinstance(status, forms.ChoiceField)
        status.choices = choices


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
    search_help_text = _(
        "A session id or its first characters (as the list shows them), "
        "or a user id or its beginning."
    )
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
    #: The session page's timeline shows this many executions (oldest first), then a link.
    timeline_shown = 100
    form = CodexSessionForm

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if is_changelist_request(request) or is_csv_export_request(request):
            # The list's usage columns, which its CSV exports too (get_csv_columns); the
            # change page reads them in its own degrading panel (_loaded_usage).
            qs = qs.annotate(**selectors.session_usage_annotations())
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
        # A prefix of the user id (LIKE 'x%': the pattern index) or of the session id
        # (a range on the primary key); both served by an index, combined by a BitmapOr.
        condition = Q(user_id__startswith=term)
        prefix = uuid_prefix_q("pk", term)
        if prefix is not None:
            condition |= prefix
        return queryset.filter(condition), False

    def get_csv_columns(self, request):
        # What the list shows beside the fields: the usage figures, as plain numbers.
        def part(key):
            return lambda usage: (usage or {}).get(key, 0)

        return [
            *super().get_csv_columns(request),
            CsvColumn(_("Executions"), "usage", part("executions")),
            CsvColumn(_("Tokens"), "usage", part("tokens")),
            CsvColumn(_("Total time (ms)"), "usage", part("time_ms")),
        ]

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
        return status_badge(obj.status, dict(SESSION_STATUSES).get(obj.status))

    @staticmethod
    def _usage(obj: CodexSession) -> dict:
        return getattr(obj, "usage", None) or {"executions": 0, "tokens": 0, "time_ms": 0}

    @admin.display(description=_("executions"))
    def executions_col(self, obj: CodexSession) -> str:
        count = self._usage(obj)["executions"]
        if not count:
            return "0"
        return format_html(
            '<a href="{}?session={}">{}</a>',
            changelist_url("core", "executionhistory"),
            obj.pk,
            grouped(count),
        )

    @admin.display(description=_("tokens"))
    def tokens_col(self, obj: CodexSession) -> str:
        return grouped(self._usage(obj)["tokens"])

    @admin.display(description=_("total time"))
    def time_col(self, obj: CodexSession) -> str:
        return duration_ms(self._usage(obj)["time_ms"])

    def _loaded_usage(self, obj: CodexSession) -> dict:
        """The session's usage, read now when the page's queryset left it out (the change
        page does, so that a lock or a slow query on the executions makes only the
        figures unavailable, not the page); run it inside :func:`degrade`."""
        if getattr(obj, "usage", None) is None and obj.pk is not None:
            # A session without executions has no usage row (NULL): keep the zeros, so
            # the page's second reader (the story, the usage field) does not query again.
            obj.usage = (  # type: ignore[attr-defined]
                CodexSession.objects.filter(pk=obj.pk)
                .annotate(**selectors.session_usage_annotations())
                .values_list("usage", flat=True)  # type: ignore[misc]
                .first()
            ) or self._usage(obj)
        return self._usage(obj)

    @admin.display(description=_("usage"))
    def usage_summary(self, obj: CodexSession) -> str:
        if getattr(obj, "usage", None) is None:  # not yet read by the story
            panel: dict = {}
            with degrade(panel, "usage", tables=[ExecutionHistory._meta.db_table]):
                self._loaded_usage(obj)
            if "usage" in panel:
                return str(panel["usage"])
        usage = self._usage(obj)
        return _("%(executions)s executions · %(tokens)s tokens · %(time)s in total") % {
            "executions": number_format(usage["executions"], force_grouping=True),
            "tokens": number_format(usage["tokens"], force_grouping=True),
            "time": duration_ms(usage["time_ms"]),
        }

    @admin.display(description=_("metadata"))
    def metadata_pretty(self, obj: CodexSession) -> str:
        return pretty_json(obj.metadata)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.story_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def story_context(self, request: HttpRequest, obj: CodexSession) -> dict:
        """The top of a session's page: status and failure, totals and cost, related rows,
        and its executions as a timeline (bounded)."""
        # A panel of its own: a lock or a slow query on the executions leaves the session
        # itself readable and editable (the figures and the timeline say "unavailable").
        panel: dict = {}
        usage = self._usage(obj)
        steps: list = []
        with degrade(panel, "story_unavailable", tables=[ExecutionHistory._meta.db_table]):
            executions = selectors.session_timeline(obj.pk, limit=self.timeline_shown)
            if getattr(obj, "usage", None) is None and len(executions) < self.timeline_shown:
                # The timeline holds every execution of the session: its totals are
                # these rows' (the same sums the usage query would make), no query.
                obj.usage = selectors.usage_of(executions)  # type: ignore[attr-defined]
            usage = self._loaded_usage(obj)
            steps = story.timeline(obj.created_at, executions)
        if panel:
            return panel
        cost = pricing.estimate_cost(obj.model, usage["tokens"])
        return {
            "story": {
                "status": status_badge(obj.status, dict(SESSION_STATUSES).get(obj.status)),
                "failure": story.failure_reason(obj.metadata),
                "executions": number_format(usage["executions"], force_grouping=True),
                "tokens": number_format(usage["tokens"], force_grouping=True),
                "time": duration_ms(usage["time_ms"]),
                "cost": None
                if cost is None
                else gettext("$%(amount)s")
                % {"amount": number_format(cost, 2, force_grouping=True)},
                "price": pricing.price_per_million(obj.model),
                "steps": steps,
                "more": max(usage["executions"] - len(steps), 0),
                "executions_url": _changelist_url(ExecutionHistory, session=str(obj.pk)),
                "related": related_links(self.related(request, obj)),
            }
        }

    def related(
        self, request: HttpRequest, obj: CodexSession
    ) -> list[tuple[StrOrPromise, str | None]]:
        user = story.portal_user_for(obj.user_id)
        project = story.project_for(obj.metadata)
        links: list[tuple[StrOrPromise, str | None]] = []
        if user is not None:
            links.append((_("User %(email)s") % {"email": user.email}, _change_url(User, user.pk)))
        links.append(
            (
                _("Sessions of caller %(id)s") % {"id": obj.user_id},
                _changelist_url(CodexSession, user_id=obj.user_id),
            )
        )
        if project is not None:
            links.append(
                (
                    _("Project %(name)s (%(company)s)")
                    % {"name": project.name, "company": project.company.name},
                    _change_url(Project, project.pk),
                )
            )
        links += [
            (_("Executions"), _changelist_url(ExecutionHistory, session=str(obj.pk))),
            (_("Sandbox runs"), _changelist_url(SandboxExecution, session=str(obj.pk))),
            (
                _("Audit entries"),
                _changelist_url(
                    ActivityLog, resource_type="core.codexsession", resource_id=str(obj.pk)
                ),
            ),
        ]
        return links


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


class ExecutionOutcomeFilter(ChoicesFilter):
    """Executions of failed or timed-out sessions, or without a response.

    The list walks the created_at index and checks each row's session by primary key:
    failures are common enough (about one session in five in the demo data) for a page
    to fill quickly.
    """

    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [
            ("failed_session", _("In a failed or timed-out session")),
            ("no_response", _("Without a response")),
        ]

    def queryset(self, request, queryset):
        value = self.clean_value()
        if value == "failed_session":
            return queryset.filter(session__status__in=selectors.FAILED_STATUSES)
        if value == "no_response":
            return queryset.filter(response__isnull=True)
        return queryset


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
        ExecutionOutcomeFilter,
        SessionFilter,
        TokenBucketFilter,
        TimeBucketFilter,
    ]
    sortable_by = ["created_at"]
    search_fields = ["prompt"]  # the search box; get_search_results does the work
    search_help_text = _(
        'Words in the prompt or response (full text: "exact phrase", -without, or); '
        "a number finds that execution, a session id (or its first 8 characters) "
        "the executions of that session."
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
        elif is_change_page_request(request):
            qs = qs.annotate(**selectors.neighbour_annotations())
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
        if len(term) >= SESSION_PREFIX_IN_TEXT_SEARCH:
            # The session column shows 8 characters: those find the session's rows.
            prefix = uuid_prefix_q("session_id", term)
            if prefix is not None:
                condition |= prefix
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
        return "—" if obj.tokens_used is None else grouped(obj.tokens_used)

    @admin.display(description=_("time"))
    def time_col(self, obj: ExecutionHistory) -> str:
        return duration_ms(obj.execution_time_ms)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # Links made here, each change page's URL reversed once per process.
            previous, following = getattr(obj, "previous_id", None), getattr(obj, "next_id", None)
            context.update(
                previous_url=None if previous is None else _change_url(ExecutionHistory, previous),
                next_url=None if following is None else _change_url(ExecutionHistory, following),
                session_url=_change_url(CodexSession, obj.session_id),
                session_executions_url=_changelist_url(
                    ExecutionHistory, session=str(obj.session_id)
                ),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("prompt"))
    def prompt_text(self, obj: ExecutionHistory) -> str:
        jump = None
        if obj.response is not None and len(obj.prompt) > 2_000:
            jump = ("portal-response", _("Jump to the response ↓"))
        return readable_text(obj.prompt, anchor="portal-prompt", jump=jump)

    @admin.display(description=_("response"))
    def response_text(self, obj: ExecutionHistory) -> str:
        return readable_text(obj.response, anchor="portal-response")


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
    list_filter = [OutcomeFilter, SessionFilter, ("executed_at", DateRangeFilter)]
    sortable_by = ["executed_at"]
    search_fields = ["id"]  # the search box; get_search_results does the work
    search_help_text = _("A run id, or a session id (or its first characters) for its runs.")
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
        condition = uuid_prefix_q("session_id", term) or Q(pk__in=[])
        if term.isdigit() and len(term) < 19:
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False

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
        return format_html('<pre class="portal-pre portal-code portal-error">{}</pre>', obj.error)

    @admin.display(description=_("result"))
    def result_pretty(self, obj: SandboxExecution) -> str:
        return result_table(obj.result)


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
                % {"count": number_format(removed, force_grouping=True)},
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
        return grouped(obj.executions)

    @admin.display(description=_("tokens"))
    def tokens_col(self, obj: ExecutionHour) -> str:
        return grouped(obj.tokens)

    @admin.display(description=_("agent time"))
    def time_col(self, obj: ExecutionHour) -> str:
        return duration_ms(obj.time_ms)
