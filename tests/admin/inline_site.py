"""An admin site with a change page that has inline rows, for the concurrency tests.

The portal's own admins show related rows as filtered lists, never as inlines
(docs/admin-at-scale.md), but every ``PortalModelAdmin`` versions inline rows
(``portal/admin/concurrency.py``); this site is where that is exercised: the project
change page with its automations as a tabular inline, on the portal's own site class
and base ModelAdmin. The portal's own URLs stay mounted for the pages the templates link to.
"""

from django.contrib import admin
from django.urls import path

from core.models import Automation, Project
from portal.admin.base import PortalModelAdmin
from portal.admin.site import PortalAdminSite
from portal.urls import urlpatterns as portal_urlpatterns

site = PortalAdminSite(name="inline_test")


class AutomationInline(admin.TabularInline):
    model = Automation
    fields = ["name", "type", "is_active"]
    extra = 0


@admin.register(Project, site=site)
class ProjectWithAutomationsAdmin(PortalModelAdmin):
    fields = ["name", "description", "status", "company", "owner"]
    inlines = [AutomationInline]


urlpatterns = [*portal_urlpatterns, path("inline/", site.urls)]
