from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    # set_language: the header's language switch (POST with CSRF, remembered in a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

# A database outage, a full server or a statement past its bound answers a plain 503
# page instead of a 500 (portal/outage.py).
handler500 = "portal.outage.server_error"
