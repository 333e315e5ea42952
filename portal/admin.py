"""The portal's admin site."""

from django.contrib import admin


class PortalAdminSite(admin.AdminSite):
    site_header = "Agent Gateway Portal"
    site_title = "Agent Gateway Portal"
    index_title = "Dashboard"
