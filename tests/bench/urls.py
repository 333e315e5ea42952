"""The portal's admin at /admin/ and, for comparison, the stock admin at /baseline/.

The baseline is what a user would otherwise have: the same models on a plain
``AdminSite`` with ``admin.ModelAdmin`` and default options. The one addition is
``search_fields`` on execution history, without which the stock admin has no search
box at all (so there would be no search page to compare).
"""

from django.contrib import admin
from django.urls import path

from core.models import CodexSession, ExecutionHistory
from portal import urls as portal_urls

baseline_site = admin.AdminSite(name="baseline")


class StockExecutionHistoryAdmin(admin.ModelAdmin):
    search_fields = ["prompt", "response"]


baseline_site.register(CodexSession, admin.ModelAdmin)
baseline_site.register(ExecutionHistory, StockExecutionHistoryAdmin)

# Every URL of the portal (its pages link to all of them: the language switch, health),
# plus the baseline beside it.
urlpatterns = [*portal_urls.urlpatterns, path("baseline/", baseline_site.urls)]
