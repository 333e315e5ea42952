from django.contrib import admin

from portal.admin_base import ReadOnlyModelAdmin

from .models import SystemMetric, UserSession


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyModelAdmin):
    list_display = ["user", "session_start", "session_end", "ip_address", "actions_count"]
    list_select_related = ["user"]


@admin.register(SystemMetric)
class SystemMetricAdmin(ReadOnlyModelAdmin):
    list_display = ["metric_name", "metric_value", "recorded_at"]
    list_filter = ["metric_name"]
