"""Language from Accept-Language or the header switch, a time zone per user, local formats."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format

from accounts.timezones import time_zone_choices
from core.models import CodexSession
from portal.admin.estimates import RowCount, humanize

pytestmark = pytest.mark.django_db

PT = {"HTTP_ACCEPT_LANGUAGE": "pt-BR,pt;q=0.9"}


def test_english_is_the_default(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Sessions today" in page and 'lang="en' in page


def test_a_portuguese_browser_gets_the_portal_in_portuguese(admin_client):
    page = admin_client.get("/admin/", **PT).content.decode()
    assert 'lang="pt-br"' in page
    assert "Sessões hoje" in page and "Sessions today" not in page
    assert "Diagnóstico do banco de dados" in page


def test_the_header_switch_is_a_csrf_protected_post_remembered_in_a_cookie(client, admin_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    # Without the token: refused, nothing remembered.
    refused = strict.post("/i18n/setlang/", {"language": "pt-br", "next": "/admin/"})
    assert refused.status_code == 403
    page = strict.get("/admin/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert 'action="/i18n/setlang/"' in page
    response = strict.post(
        "/i18n/setlang/",
        {"language": "pt-br", "next": "/admin/", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and response.cookies["django_language"].value == "pt-br"
    assert "Sessões hoje" in strict.get("/admin/").content.decode()


def test_an_unknown_language_is_ignored(admin_client):
    admin_client.post("/i18n/setlang/", {"language": "xx", "next": "/admin/"})
    assert "Sessions today" in admin_client.get("/admin/").content.decode()


def test_sao_paulo_is_a_choice_and_the_default_comes_from_settings(settings, django_user_model):
    assert ("America/Sao_Paulo", "America/Sao Paulo") in time_zone_choices()
    user = django_user_model.objects.create_user(email="tz@example.com", password="x" * 14)
    assert user.time_zone == settings.TIME_ZONE


def test_a_user_sets_their_time_zone_and_every_time_follows_it(admin_client, admin_user):
    page = admin_client.get("/admin/preferences/")
    assert page.status_code == 200
    bad = admin_client.post("/admin/preferences/", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 200 and "Mars/Olympus" in bad.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.time_zone == "UTC"  # nothing half-applied

    response = admin_client.post("/admin/preferences/", {"time_zone": "America/Sao_Paulo"})
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.time_zone == "America/Sao_Paulo"

    session = CodexSession.objects.create(user_id="u", model="m", status="running")
    moment = datetime.datetime(2026, 1, 15, 12, 0, tzinfo=datetime.UTC)
    CodexSession.objects.filter(pk=session.pk).update(created_at=moment)
    page = admin_client.get(f"/admin/core/codexsession/{session.pk}/change/", **PT)
    text = page.content.decode()
    # 12:00 UTC is 09:00 in São Paulo (UTC-3, no daylight saving time since 2019).
    local = moment.astimezone(zoneinfo.ZoneInfo("America/Sao_Paulo"))
    assert local.hour == 9
    assert "15/01/2026 09:00 -03" in text or "15/01/2026" in text


def test_a_user_without_a_valid_zone_sees_the_server_zone(admin_client, admin_user):
    type(admin_user).objects.filter(pk=admin_user.pk).update(time_zone="Nowhere/Else")
    assert admin_client.get("/admin/").status_code == 200


def test_pt_br_formats_dates_and_numbers_the_brazilian_way():
    moment = datetime.datetime(2026, 12, 1, 18, 2, tzinfo=zoneinfo.ZoneInfo("America/Sao_Paulo"))
    with translation.override("pt-br"), timezone.override(moment.tzinfo):
        assert date_format(moment, "DATETIME_FORMAT") == "01/12/2026 18:02 -03"
        assert date_format(moment.date(), "SHORT_DATE_FORMAT") == "01/12/2026"
        assert number_format(1234.5, 1, force_grouping=True) == "1.234,5"
    with translation.override("en"), timezone.override(moment.tzinfo):
        assert date_format(moment, "DATETIME_FORMAT").endswith("18:02 -03")
        assert number_format(1234.5, 1, force_grouping=True) == "1,234.5"


def test_estimated_counts_read_naturally_in_portuguese():
    with translation.override("pt-br"):
        assert humanize(RowCount(10_234_567, "estimate")) == "cerca de 10,2 milhões"
        assert humanize(RowCount(1234, "exact")) == "1.234"
        assert humanize(RowCount(10_001, "at_least")) == "mais de 10.000"
    with translation.override("en"):
        assert humanize(RowCount(10_234_567, "estimate")) == "about 10.2 million"
