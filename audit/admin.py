"""Admin pages of the audit trail (read-only), groups, and locked-out logins.

Groups are registered by ``django.contrib.auth`` with a plain ModelAdmin; they are
re-registered here on the portal's audited base so role changes reach the audit
trail like any other change. django-axes' own admin is off (``AXES_ENABLE_ADMIN``);
locked-out logins are listed here, and deleting one (unlocking) is audited.
"""

import json
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.urls import NoReverseMatch
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from portal.admin.base import ReadOnlyModelAdmin
from portal.admin.changelist import is_changelist_request
from portal.admin.display import change_url
from portal.admin.filters import DateRangeFilter
from portal.db.rows import select

from . import archive, chain, services
from .admin_mixins import _ModelAdminBase
from .models import ActivityLog, SecurityEvent
from .services import MASK

HIDDEN = _("(hidden)")


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if value == MASK:
        return str(HIDDEN)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return str(value)


def render_changes(details: dict) -> SafeString:
    """The ``changes`` of an entry as a field / before / after table."""
    changes = details.get("changes") if isinstance(details, dict) else None
    if not isinstance(changes, dict) or not changes:
        return format_html('<p class="audit-none">{}</p>', _("No field changes recorded."))
    rows = []
    for field, change in changes.items():
        if isinstance(change, dict) and set(change) <= {"old", "new"}:
            old, new = change.get("old"), change.get("new")
        else:
            old, new = None, change
        rows.append((field, _show(old), _show(new)))
    body = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>',
        rows,
    )
    return format_html(
        '<table class="audit-diff"><thead><tr><th>{}</th><th>{}</th>'
        "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
        _("Field"),
        _("Before"),
        _("After"),
        body,
    )


def render_other_details(details: dict) -> str:
    other = {k: v for k, v in (details or {}).items() if k != "changes"}
    return json.dumps(other, indent=2, ensure_ascii=False, sort_keys=True) if other else "—"


class ActorFilter(admin.SimpleListFilter):
    title = _("actor")
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        emails = (
            model_admin.get_queryset(request)
            .exclude(actor_email="")
            .order_by("actor_email")
            .values_list("actor_email", flat=True)
            .distinct()[:200]
        )
        return [("-", _("system (no user)")), *((e, e) for e in emails)]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "-":
            return queryset.filter(actor_email="")
        if value:
            return queryset.filter(actor_email=value)
        return queryset


#: The actions the portal records (audit.services, audit.chain, diagnostics.actions,
#: the Metabase watchdog),
#: with labels: the Action filter offers exactly these.
ACTION_LABELS = {
    services.CREATE: _("Created"),
    services.CHANGE: _("Changed"),
    services.DELETE: _("Deleted"),
    services.CASCADE_DELETE: _("Deleted with related rows"),
    services.BULK_ACTION: _("Ran a bulk action"),
    services.PURGE: _("Purged expired cache"),
    services.EXPORT: _("Exported"),
    services.PASSWORD_CHANGE: _("Changed own password"),
    chain.VERIFY_ACTION: _("Verified the audit chain"),
    "diagnostics.cancel_backend": _("Cancelled a query"),
    "diagnostics.terminate_backend": _("Terminated a database session"),
    "diagnostics.reset_query_stats": _("Reset query statistics"),
    archive.ARCHIVE_ACTION: _("Archived audit rows"),
    "diagnostics.explain_analyze": _("Ran EXPLAIN ANALYZE"),
    "metabase_watchdog.cancel": _("Metabase watchdog: cancelled a query"),
    "metabase_watchdog.terminate": _("Metabase watchdog: terminated a session"),
    "metabase_watchdog.unlink": _("Metabase watchdog: removed a role membership"),
    "metabase_watchdog.converge": _("Metabase watchdog: restored the grants"),
    "metabase_watchdog.error": _("Metabase watchdog: could not act"),
}


def _model_names(label: str, count: int) -> str:
    """``app.model`` as the model's name in the reader's language (singular or plural)."""
    try:
        opts = django_apps.get_model(label)._meta
    except (LookupError, ValueError):
        return label
    return str(opts.verbose_name if count == 1 else opts.verbose_name_plural)


#: The actions whose object text :func:`described` writes from the entry's details.
DESCRIBED_ACTIONS = (services.PURGE, services.CASCADE_DELETE, services.BULK_ACTION)


def described(entry: ActivityLog) -> str | None:
    """What an entry of the portal's own summary actions did, in the reader's language,
    from its details (the stored ``object_repr`` is the writer's English, and part of
    the hash chain: it is kept as written). None for any other entry."""
    if entry.action not in DESCRIBED_ACTIONS:
        return None
    details = entry.details
    if not isinstance(details, dict):
        return None
    try:
        if entry.action == services.PURGE and "deleted" in details:
            deleted = int(details["deleted"])
            return ngettext(
                "%(count)s expired tool cache entry",
                "%(count)s expired tool cache entries",
                deleted,
            ) % {"count": number_format(deleted, force_grouping=True)}
        if entry.action == services.CASCADE_DELETE and "total" in details:
            total, roots = int(details["total"]), list(details.get("roots") or [])
            return ngettext(
                "%(total)s related row removed with %(count)s %(things)s",
                "%(total)s related rows removed with %(count)s %(things)s",
                total,
            ) % {
                "total": number_format(total, force_grouping=True),
                "count": len(roots),
                "things": _model_names(entry.resource_type, len(roots)),
            }
        if entry.action == services.BULK_ACTION and "count" in details:
            count = int(details["count"])
            return gettext("%(action)s on %(count)s %(things)s") % {
                "action": details.get("name", ""),
                "count": number_format(count, force_grouping=True),
                "things": _model_names(entry.resource_type, count),
            }
    except (TypeError, ValueError):
        return None  # details written by hand or by an older version: the stored text
    return None


class ActionFilter(admin.SimpleListFilter):
    """One vocabulary: the portal's action names, shown by label."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return list(ACTION_LABELS.items())

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(action=value) if value else queryset


class AuditMedia:
    css = {"all": ["audit/audit.css"]}


#: The newest entry per resource type; the (resource_type, resource_id) index finds
#: each without scanning the log. Plain SQL: it runs on every audit list view, and
#: the ORM took four times as long to build it as PostgreSQL to answer it.
LAST_RUNS_SQL = """
SELECT DISTINCT ON (resource_type) resource_type, id, created_at, details
FROM audit.activity_logs
WHERE resource_type = ANY(%(types)s) AND resource_id = ''
ORDER BY resource_type, created_at DESC, chain_seq DESC
"""


def last_runs() -> tuple[ActivityLog | None, ActivityLog | None]:
    """The latest ``verify_audit_chain`` run and the latest ``archive_audit`` run, from
    their own entries in the activity log, in one query.

    Kept in the chained, append-only log itself (not a table of their own): a forged
    "verified" entry would need the same tampering the verifier reports.
    """
    runs = select(ActivityLog, LAST_RUNS_SQL, {"types": [chain.VERIFICATION, archive.ARCHIVE]})
    latest = {entry.resource_type: entry for entry in runs}
    return latest.get(chain.VERIFICATION), latest.get(archive.ARCHIVE)


class ChainStatusMixin(_ModelAdminBase):
    """The audit lists show the result of the last chain verification and of the last
    archive run above the rows (``admin/audit/change_list.html``, found by the portal's
    list template lookup)."""

    def changelist_view(self, request, extra_context=None):
        verification, archive_run = last_runs()
        extra_context = {
            **(extra_context or {}),
            "chain_verification": verification,
            "archive_run": archive_run,
            "audit_retention_days": settings.AUDIT_RETENTION_DAYS,
        }
        return super().changelist_view(request, extra_context)


@admin.register(ActivityLog)
class ActivityLogAdmin(ChainStatusMixin, ReadOnlyModelAdmin):
    list_display = [
        "created_at",
        "actor_email",
        "action_col",
        "resource_type",
        "object_link",
        "ip_address",
    ]
    list_filter = [ActorFilter, ActionFilter, "resource_type", ("created_at", DateRangeFilter)]
    search_fields = ["actor_email", "object_repr", "=resource_id", "=request_id"]
    show_full_result_count = False
    fields = [
        "created_at",
        "user",
        "actor_email",
        "action",
        "resource_type",
        "resource_id",
        "object_link",
        "changes",
        "other_details",
        "ip_address",
        "user_agent",
        "request_id",
    ]
    readonly_fields = ["object_link", "changes", "other_details"]
    Media = AuditMedia

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        # The list shows the details only as the object text of the summary actions
        # (mask_list_rows reads them for those rows): not fifty JSON documents a page.
        return qs.defer("details") if is_changelist_request(request) else qs

    def mask_list_rows(self, request, rows) -> None:
        wanted = [entry.pk for entry in rows if entry.action in DESCRIBED_ACTIONS]
        if wanted:
            found = dict(ActivityLog.objects.filter(pk__in=wanted).values_list("pk", "details"))
            for entry in rows:
                if entry.pk in found:
                    entry.details = found[entry.pk]
        super().mask_list_rows(request, rows)

    @admin.display(description=_("action"), ordering="action")
    def action_col(self, entry: ActivityLog) -> str:
        label = ACTION_LABELS.get(entry.action)
        if label is None:
            return entry.action
        return format_html('<span title="{}">{}</span>', entry.action, label)

    @admin.display(description=_("object"))
    def object_link(self, entry: ActivityLog) -> str:
        text = described(entry) or entry.object_repr or entry.resource_id or "—"
        if "." in entry.resource_type and entry.resource_id:
            app_label, model_name = entry.resource_type.split(".", 1)
            try:
                url = change_url(app_label, model_name, entry.resource_id)
            except NoReverseMatch:
                return text
            return format_html('<a href="{}">{}</a>', url, text)
        return text

    @admin.display(description=_("changes"))
    def changes(self, entry: ActivityLog) -> SafeString:
        return render_changes(entry.details)

    @admin.display(description=_("other details"))
    def other_details(self, entry: ActivityLog) -> SafeString:
        return format_html("<pre>{}</pre>", render_other_details(entry.details))

    def changelist_view(self, request, extra_context=None):
        # Reached from an object's "History" button: say whose history this is.
        resource = request.GET.get("resource_type")
        object_id = request.GET.get("resource_id")
        if resource and object_id:
            extra_context = {**(extra_context or {}), "subtitle": f"{resource} {object_id}"}
        return super().changelist_view(request, extra_context)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ChainStatusMixin, ReadOnlyModelAdmin):
    list_display = ["created_at", "event_type", "email_attempted", "user", "ip_address"]
    list_filter = ["event_type", ("created_at", DateRangeFilter)]
    list_select_related = ["user"]
    search_fields = ["email_attempted"]
    show_full_result_count = False
    fields = [
        "created_at",
        "event_type",
        "user",
        "email_attempted",
        "ip_address",
        "user_agent",
        "details_pretty",
    ]
    readonly_fields = ["details_pretty"]
    Media = AuditMedia

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        # The list never shows the details: don't fetch and parse fifty JSON documents.
        return qs.defer("details") if is_changelist_request(request) else qs

    @admin.display(description=_("details"))
    def details_pretty(self, event: SecurityEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(event.details, indent=2, ensure_ascii=False))
