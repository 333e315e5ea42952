"""The sidebar's model list (portal/templatetags/portal_nav.py) is the markup Django's
include gives.

Each page's ``<nav id="nav-sidebar">`` is compared with Django's own nav_sidebar.html
rendered from the same context: on every registered model's list and add/change pages
(each marks its own model as current), for a superuser and a view-only user, on the
first request (rendered) and the next (reused).
"""

from __future__ import annotations

import re
from pathlib import Path

import django
import pytest
from django.contrib.auth.models import Permission
from django.template import RequestContext, engines
from django.template.backends.django import DjangoTemplates
from django.test import Client

from portal.templatetags import portal_nav
from tests.audit.support import make_user

from .support import admin_url, make_rows, registered_models

pytestmark = pytest.mark.django_db

NAV = re.compile(r'<nav class="sticky" id="nav-sidebar".*?</nav>', re.S)
DJANGO_NAV_SIDEBAR = (
    Path(django.__file__).parent / "contrib/admin/templates/admin/nav_sidebar.html"
).read_text()


def _nav(client: Client, url: str) -> tuple[str, str]:
    """(the page's sidebar, Django's nav_sidebar.html from the page's context)."""
    response = client.get(url)
    assert response.status_code == 200, url
    ours = NAV.search(response.content.decode())
    assert ours, url
    backend = engines["django"]
    assert isinstance(backend, DjangoTemplates)
    template = backend.engine.from_string(DJANGO_NAV_SIDEBAR)
    django_nav = template.render(RequestContext(response.wsgi_request, response.context_data))
    theirs = NAV.search(django_nav)
    assert theirs, url
    return ours.group(0), theirs.group(0)


def _pages() -> list[str]:
    urls = [admin_url(model, "changelist") for model in registered_models()]
    for model in registered_models():
        (obj,) = make_rows(model, 1)
        urls.append(admin_url(model, "change", obj.pk))
    return urls


def _assert_same_sidebars(client: Client) -> None:
    portal_nav._rendered.clear()
    for url in _pages():
        for _ in range(2):  # rendered, then reused
            ours, django_nav = _nav(client, url)
            assert ours == django_nav, url
        if "/change/" not in url:
            assert 'aria-current="page"' in ours, url


def test_the_sidebar_is_djangos_for_a_superuser(admin_client):
    _assert_same_sidebars(admin_client)
    assert portal_nav._rendered, "the sidebar was never reused"


def test_the_sidebar_is_djangos_for_a_view_only_user():
    user = make_user("viewer@example.com")
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[f"view_{m._meta.model_name}" for m in registered_models()]
        )
    )
    client = Client()
    client.force_login(user)
    _assert_same_sidebars(client)


def test_users_with_other_permissions_get_their_own_sidebar(admin_client):
    url = admin_url(registered_models()[0], "changelist")
    viewer = make_user("viewer@example.com")
    viewer.user_permissions.set(Permission.objects.filter(codename="view_company"))
    client = Client()
    client.force_login(viewer)
    portal_nav._rendered.clear()
    full, _ = _nav(admin_client, admin_url(registered_models()[0], "changelist"))
    small, expected = _nav(client, "/admin/accounts/company/")
    assert small == expected and small != full
    assert url not in small


def test_the_sidebar_follows_the_language_it_is_read_in(admin_client):
    url = admin_url(registered_models()[0], "changelist")
    portal_nav._rendered.clear()
    english, _ = _nav(admin_client, url)
    admin_client.cookies["django_language"] = "pt-br"
    portuguese, expected = _nav(admin_client, url)
    assert portuguese == expected and portuguese != english
    del admin_client.cookies["django_language"]
    assert _nav(admin_client, url)[0] == english


def test_a_permission_granted_shows_its_model_on_the_next_page(django_user_model):
    """The app list is kept per set of permission answers, never per user: a user whose
    permissions change gets the list the new answers give."""
    viewer = make_user("viewer@example.com")
    viewer.user_permissions.set(Permission.objects.filter(codename="view_company"))
    client = Client()
    client.force_login(viewer)
    before, _ = _nav(client, "/admin/accounts/company/")
    assert "/admin/core/project/" not in before
    viewer.user_permissions.add(Permission.objects.get(codename="view_project"))
    after, expected = _nav(client, "/admin/accounts/company/")
    assert after == expected and "/admin/core/project/" in after
    # What a caller is handed is its own: emptying it leaves the kept dict whole.
    from django.contrib import admin

    from portal.admin.site import PortalAdminSite

    site = admin.site
    assert isinstance(site, PortalAdminSite)
    request = client.get("/admin/").wsgi_request
    for app in site._app_dict(request, None).values():
        app["models"].clear()
    assert all(app["models"] for app in site._app_dict(request, None).values())
    assert _nav(client, "/admin/accounts/company/")[0] == after
