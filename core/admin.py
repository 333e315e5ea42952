from django.contrib import admin

from portal.admin_base import PortalModelAdmin, ReadOnlyModelAdmin

from .models import Automation, CodexSession, ExecutionHistory, McpCache, Project, SandboxExecution


@admin.register(Project)
class ProjectAdmin(PortalModelAdmin):
    list_display = ["name", "company", "owner", "status", "created_at"]
    list_filter = ["status"]
    list_select_related = ["company", "owner"]
    search_fields = ["name"]
    autocomplete_fields = ["company", "owner"]


@admin.register(Automation)
class AutomationAdmin(PortalModelAdmin):
    list_display = ["name", "type", "project", "is_active", "created_at"]
    list_filter = ["type", "is_active"]
    list_select_related = ["project"]
    search_fields = ["name"]
    autocomplete_fields = ["project"]


@admin.register(CodexSession)
class CodexSessionAdmin(PortalModelAdmin):
    list_display = ["session_id", "user_id", "model", "status", "created_at"]
    list_filter = ["status", "model"]
    search_fields = ["=user_id"]
    show_full_result_count = False


@admin.register(ExecutionHistory)
class ExecutionHistoryAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "session", "tokens_used", "execution_time_ms", "created_at"]
    list_select_related = ["session"]
    show_full_result_count = False


@admin.register(SandboxExecution)
class SandboxExecutionAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "session", "executed_at"]
    list_select_related = ["session"]


@admin.register(McpCache)
class McpCacheAdmin(PortalModelAdmin):
    list_display = ["tool_name", "cached_at", "expires_at"]
    search_fields = ["tool_name"]
