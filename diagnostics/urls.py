"""URLs of the diagnostics pages, mounted by ``PortalAdminSite.extra_urls``.

The page URLs are a contract: ``/admin/diagnostics/`` (``admin:diagnostics``) and
``/admin/diagnostics/<slug>/`` (``admin:diagnostics_<slug>``); ``?db=<alias>`` picks
the database.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.urls import URLPattern, path

from diagnostics import pages, views


def diagnostics_urls(site: AdminSite) -> list[URLPattern]:
    urls = [
        path(
            "diagnostics/",
            site.admin_view(views.page_view(site, "overview")),
            name="diagnostics",
        ),
        path(
            "diagnostics/activity/signal/",
            site.admin_view(views.signal_view(site)),
            name="diagnostics_signal",
        ),
        path(
            "diagnostics/activity/terminate-idle/",
            site.admin_view(views.terminate_idle_view(site)),
            name="diagnostics_terminate_idle",
        ),
        path(
            "diagnostics/activity/signal-long/",
            site.admin_view(views.signal_long_view(site)),
            name="diagnostics_signal_long",
        ),
        path(
            "diagnostics/queries/statement/",
            site.admin_view(views.statement_view(site)),
            name="diagnostics_statement",
        ),
        path(
            "diagnostics/queries/statement/analyze/",
            site.admin_view(views.explain_analyze_view(site)),
            name="diagnostics_explain_analyze",
        ),
        path(
            "diagnostics/queries/reset/",
            site.admin_view(views.reset_view(site)),
            name="diagnostics_reset_queries",
        ),
    ]
    for slug, _title in pages.PAGES:
        if slug != "overview":
            urls.append(
                path(
                    f"diagnostics/{slug}/",
                    site.admin_view(views.page_view(site, slug)),
                    name=f"diagnostics_{slug}",
                )
            )
    return urls
