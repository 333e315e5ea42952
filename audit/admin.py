from django.contrib import admin

from portal.admin_base import ReadOnlyModelAdmin

from .models import ActivityLog, SecurityEvent


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "actor_email", "action", "resource_type", "resource_id"]
    list_filter = ["action", "resource_type"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "event_type", "email_attempted", "ip_address"]
    list_filter = ["event_type"]
