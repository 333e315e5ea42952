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
