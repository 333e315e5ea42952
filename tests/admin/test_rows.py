"""The portal's changelist rows (portal/templatetags/portal_rows.py) are Django's rows,
byte for byte.

Every registered model's list page, with the demo data, is rendered twice: with the
portal's row renderer and with Django's own ``result_list``; the results table must be
identical, as a superuser (action checkboxes), as a view-only user, with filters in the
address (links carry them as preserved filters) and as a popup. Odd columns and odd
primary keys are compared on a list made up for the test.
"""

from __future__ import annotations

import datetime
import re
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import ResultList, result_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone, translation
from django.utils.html import format_html

from accounts.models import Company
from portal.admin.base import PortalModelAdmin
from portal.templatetags import portal_rows
from tests.audit.support import make_user

from .support import admin_url, make_rows, model_id, registered_models

pytestmark = pytest.mark.django_db

RESULTS = re.compile(r'<div class="results">.*?</table>\s*</div>', re.S)


@pytest.fixture
def demo_rows():
    """The demo data, plus a few rows of any registered model it leaves empty."""
    call_command("seed_demo", stdout=StringIO())
    for model in registered_models():
        if not model._default_manager.exists():
            make_rows(model, 3)


def _results(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    found = RESULTS.search(response.content.decode())
    assert found, f"no results table on {url}"
    return found.group(0)


def _both(client: Client, url: str, monkeypatch) -> tuple[str, str]:
    """(portal rows, Django's rows) of one list page."""
    portal = _results(client, url)
    with monkeypatch.context() as patch:
        patch.setattr(portal_rows, "supports", lambda cl: False)
        django = _results(client, url)
    return portal, django


def _first_difference(url: str, portal: str, django: str) -> str:
    pairs = enumerate(zip(portal, django, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(portal), len(django)))
    around = slice(max(at - 80, 0), at + 80)
    return f"{url} differs at {at}:\n portal: {portal[around]!r}\n django: {django[around]!r}"


def _pk_range(model) -> str:
    """A filter on the primary key that keeps some rows: ``pk__gte=..&pk__lte=..``."""
    pk = model._meta.pk.attname
    keys = sorted(model._default_manager.values_list(pk, flat=True)[:20])
    # Encoded: a datetime key's "+00:00" must not arrive as a space.
    return urlencode({f"{pk}__gte": str(keys[0]), f"{pk}__lte": str(keys[-1])})


def _assert_same_rows(client, model, monkeypatch, query: str = "") -> str:
    url = admin_url(model, "changelist") + (f"?{query}" if query else "")
    portal, django = _both(client, url, monkeypatch)
    assert portal == django, _first_difference(url, portal, django)
    assert portal.count("<tr>") > 1, f"{url} shows no rows"
    return portal


def test_every_list_renders_the_same_rows_as_django(admin_client, demo_rows, monkeypatch):
    for model in registered_models():
        rows = _assert_same_rows(admin_client, model, monkeypatch)
        if "action-select" in rows:
            assert 'aria-label="Select this object for an action - ' in rows


def test_every_list_with_filters_links_rows_with_the_filters(admin_client, demo_rows, monkeypatch):
    for model in registered_models():
        rows = _assert_same_rows(admin_client, model, monkeypatch, _pk_range(model))
        assert "_changelist_filters=" in rows, model_id(model)


def test_every_list_renders_the_same_rows_for_a_view_only_user(demo_rows, monkeypatch):
    user = make_user("viewer@example.com")
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[f"view_{m._meta.model_name}" for m in registered_models()]
        )
    )
    client = Client()
    client.force_login(user)
    for model in registered_models():
        rows = _assert_same_rows(client, model, monkeypatch, _pk_range(model))
        assert "action-select" not in rows, model_id(model)


def test_every_list_renders_the_same_rows_as_a_popup(admin_client, demo_rows, monkeypatch):
    for model in registered_models():
        pk = model._meta.pk.attname
        rows = _assert_same_rows(admin_client, model, monkeypatch, f"_popup=1&_to_field={pk}")
        assert "data-popup-opener=" in rows, model_id(model)


# --- Columns and keys no registered admin has (yet) -------------------------------------


def _not_set(obj):
    return None


@admin.display(boolean=True, description="big")
def _is_big(obj):
    return obj.max_users > 50


class OddColumnsAdmin(PortalModelAdmin):
    list_display = [
        "name",
        "__str__",
        lambda obj: obj.domain.upper(),
        _is_big,
        _not_set,
        "created_day",
        "blank",
        "dangerous",
        "subscription_plan",
        "is_active",
        "max_users",
        "seats",
        "created_at",
        "pk",
        "id",
    ]
    list_display_links = ["name", "created_day"]
    empty_value_display = "(none)"

    @admin.display(empty_value="nothing here")
    def blank(self, obj):
        return "   "

    def seats(self, obj):
        return obj.max_users * 1000

    def created_day(self, obj):
        return obj.created_at.date()

    def dangerous(self, obj):
        return "<script>alert(1)</script> & " + format_html("<b>{}</b>", obj.name)


@pytest.fixture(params=["default", "german-kolkata-grouped"])
def locale(request):
    """The settings numbers, dates and words are formatted with; yields how 12345 reads."""
    if request.param == "default":
        yield "12345"
        return
    with (
        override_settings(USE_THOUSAND_SEPARATOR=True),
        translation.override("de"),
        timezone.override("Asia/Kolkata"),
    ):
        yield "12.345"


def _rows(context: dict[str, Any]) -> list[ResultList]:
    """The rows of Django's result_list context (a dict of many kinds of values)."""
    return context["results"]


@pytest.mark.parametrize("query", ["", "is_active__exact=1&o=1", "_popup=1&_to_field=id"])
def test_odd_columns_render_the_same_as_django(admin_user, query, locale):
    make_rows(Company, 5)
    Company.objects.update(max_users=12345)
    first = Company.objects.first()
    assert first is not None
    Company.objects.filter(pk=first.pk).update(name=" <Odd & \"quoted\" 'name'> ", domain="")
    site = admin.AdminSite(name="odd")
    model_admin = OddColumnsAdmin(Company, site)
    request = RequestFactory().get("/admin/accounts/company/" + (f"?{query}" if query else ""))
    request.user = admin_user
    cl = model_admin.get_changelist_instance(request)
    cl.formset = None  # set by changelist_view: not an editable list
    ours, django = portal_rows.portal_result_list(cl), result_list(cl)
    assert len(ours["results"]) == cl.result_count > 0
    assert f">{locale}<" in str(ours["results"][0][0])
    assert [list(r) for r in ours["results"]] == [["".join(r)] for r in _rows(django)]
    assert ours["result_headers"] == django["result_headers"]


def test_odd_primary_keys_are_quoted_in_links_as_django_quotes_them(admin_user):
    make_rows(Company, 1)
    request = RequestFactory().get("/admin/accounts/company/?name__exact=a%26b&o=-2")
    request.user = admin_user
    cl = admin.site._registry[Company].get_changelist_instance(request)
    urls = portal_rows._ObjectURL(cl)
    context: dict[str, Any] = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}
    for key in ["a b/c_d", "50%", "x&y'z\"<>", "é漢字", "a:b;c@d", "?#", "\\", "1\n2"]:
        obj = Company(name="n")
        obj.id = key  # an in-memory object: no database value could be this odd
        expected = format_html("{}", add_preserved_filters(context, cl.url_for_result(obj)))
        assert urls.html(obj) == expected, key


def test_an_object_without_a_change_url_is_shown_without_a_link(admin_user):
    make_rows(Company, 1)
    request = RequestFactory().get("/admin/accounts/company/")
    request.user = admin_user
    cl = admin.site._registry[Company].get_changelist_instance(request)
    obj = Company(name="n", created_at=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    obj.id = ""
    cl.result_list, cl.formset = [obj], None
    ours, django = portal_rows.portal_result_list(cl), result_list(cl)
    assert [list(r) for r in ours["results"]] == [["".join(r)] for r in _rows(django)]
    assert "<a href" not in str(ours["results"][0][0])
