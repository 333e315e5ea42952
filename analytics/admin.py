"""Admin for usage analytics: read-only lists with date filters."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from portal.admin.base import ReadOnlyModelAdmin
from portal.admin.display import pretty_json, preview
from portal.admin.filters import DateRangeFilter, IndexedValuesFilter

from .models import SystemMetric, UserSession

#: A user search on a large table first finds the users (a small table), then their rows.
MAX_MATCHED_USERS = 200


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyModelAdmin):
    list_display = ["user", "session_start", "session_end", "ip_address", "actions_count"]
    list_filter = [("session_start", DateRangeFilter)]
    list_select_related = ["user"]
    sortable_by = ["session_start"]
    search_fields = ["user__email"]  # the search box; get_search_results does the work
    search_help_text = _("Part of a user's email address.")
    fields = [
        "user",
        "session_start",
        "session_end",
        "ip_address",
        "user_agent",
        "actions_count",
    ]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term or len(term) > self.max_search_length:
            return super().get_search_results(request, queryset, term)
        users = User.objects.filter(email__icontains=term).values_list("pk", flat=True)
        return queryset.filter(user_id__in=list(users[:MAX_MATCHED_USERS])), False


@admin.register(SystemMetric)
class SystemMetricAdmin(ReadOnlyModelAdmin):
    list_display = ["metric_name", "metric_value", "tags_col", "recorded_at"]
    list_filter = [("metric_name", IndexedValuesFilter), ("recorded_at", DateRangeFilter)]
    sortable_by = ["recorded_at"]
    fields = ["metric_name", "metric_value", "recorded_at", "tags_pretty"]

    @admin.display(description=_("tags"))
    def tags_col(self, obj: SystemMetric) -> str:
        if not obj.tags:
            return "—"
        text = (
            ", ".join(f"{k}={v}" for k, v in sorted(obj.tags.items()))
            if isinstance(obj.tags, dict)
            else str(obj.tags)
        )
        return format_html('<span class="portal-mono">{}</span>', preview(text, 80))

    @admin.display(description=_("tags"))
    def tags_pretty(self, obj: SystemMetric) -> str:
        return pretty_json(obj.tags)
