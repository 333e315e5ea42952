"""Hostile input never gives a server error: every registered model's pages are walked
with malformed ids, filters, sort and page values, huge and odd search strings, and bad
JSON; the answer is a page, a redirect with a message, a 400 or a 404."""

from urllib.parse import quote

import pytest
from django.contrib import admin
from django.db import models

from core.models import Automation

from .support import admin_url, make_rows, model_id, registered_models

pytestmark = pytest.mark.django_db

ACCEPTABLE = {200, 302, 400, 403, 404}

HOSTILE_VALUES = ["not-a-uuid", "a%00b", "9" * 40, "99999-12-31", "x" * 5000, "%FF%FE"]

GENERIC_QUERIES = [
    "q=" + "x" * 20000,
    "q=%00",
    "q=a%00b",
    "q=' OR 1=1 --",
    "q=\\",
    "q=%25%25%25",
    "q=" + "%C3%BC" * 300,
    "q=%22unterminated",
    "q=-",
    "q=00000000-0000-0000-0000-000000000000",
    "q=123456789012345678901234567890",
    "o=abc",
    "o=999",
    "o=-",
    "o=1.2.3",
    "p=abc",
    "p=-1",
    "p=0",
    "p=99999999999999999999",
    "e=1",
    "_facets=1",
    "all=",
    "no_such_field=1",
    "pk__in=abc",
    "id__gt=abc",
    "id=9999999999999999999999",
    "pk=not-a-uuid",
    "created_at__gte=notadate",
    "created_at__lt=%00",
    "created_at__gte=9999-12-31",
    "created_at__year=99999",
    "_to_field=password",
    "_popup=1&_to_field=id",
    "prompt__regex=(",
    "session=not-a-uuid",
    "session=%00",
    "tokens=99",
    "tokens=abc",
    "time=-1",
    "outcome=maybe",
    "expired=perhaps",
    "status=%00",
    "status__in=a,%00",
]


def _filter_queries(model) -> list[str]:
    """Hostile values for every parameter of every list filter of this model's admin."""
    model_admin = admin.site._registry[model]
    params = set()
    for item in model_admin.list_filter:
        if isinstance(item, str):
            params.update({item, f"{item}__exact"})
        elif isinstance(item, tuple | list):
            name = item[0]
            assert isinstance(name, str)
            params.update({name, f"{name}__gte", f"{name}__lt"})
        else:
            assert isinstance(item, type) and issubclass(item, admin.SimpleListFilter)
            assert item.parameter_name is not None
            params.add(item.parameter_name)
    return [f"{p}={v}" for p in sorted(params) for v in HOSTILE_VALUES]


def _get(client, url):
    response = client.get(url)
    assert response.status_code in ACCEPTABLE, (url[:300], response.status_code)
    return response


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_each_list_survives_hostile_query_strings(admin_client, model):
    make_rows(model, 3)
    url = admin_url(model, "changelist")
    for query in GENERIC_QUERIES + _filter_queries(model):
        response = _get(admin_client, f"{url}?{query}")
        if response.status_code == 302:
            # The redirect lands on a working page (the list, reset, with a message).
            _get(admin_client, response["Location"])


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_each_csv_export_survives_hostile_query_strings(admin_client, model):
    url = admin_url(model, "export_csv")
    for query in ["q=%00", "created_at__gte=bad", "p=abc", "session=nope", "o=zz"]:
        response = _get(admin_client, f"{url}?{query}")
        if response.status_code == 200:
            b"".join(response.streaming_content)


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_unknown_and_malformed_ids_are_not_found(admin_client, model):
    for object_id in [
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "999999999",
        "99999999999999999999999999",
        "-1",
        quote("a\x00b"),
        quote("' OR 1=1 --", safe=""),
        "x" * 3000,
    ]:
        for view in ("change", "history", "delete"):
            url = admin_url(model, view, "PLACEHOLDER").replace("PLACEHOLDER", object_id)
            response = admin_client.get(url)
            assert response.status_code in {403, 404}, (url[:200], response.status_code)


def test_unknown_session_page_says_what_was_not_found(admin_client):
    from core.models import CodexSession

    response = admin_client.get(
        admin_url(CodexSession, "change", "00000000-0000-0000-0000-000000000000")
    )
    assert response.status_code == 404
    assert b"There is no agent session" in response.content


def _json_fields(model_admin, model) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, models.JSONField) and f.editable
    ]


BAD_JSON = [
    "{not json",
    "{'single': 'quotes'}",
    "[1, 2,",
    "NaN",
    '{"x": Infinity}',
    '{"nul": "a\\u0000b"}',
    '{"surrogate": "\\ud800"}',
    "x" * 10000,
]


def test_bad_json_in_every_form_with_json_is_a_form_error(admin_client, rf, admin_user):
    request = rf.get("/")
    request.user = admin_user
    checked = []
    for model in registered_models():
        model_admin = admin.site._registry[model]
        if not (
            model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
        ):
            continue
        form_fields = set(model_admin.get_form(request, change=True).base_fields)
        fields = [f for f in _json_fields(model_admin, model) if f in form_fields]
        if not fields:
            continue
        urls = []
        if model_admin.has_add_permission(request):
            urls.append(admin_url(model, "add"))
        (obj,) = make_rows(model, 1)
        if model_admin.has_change_permission(request, obj):
            urls.append(admin_url(model, "change", obj.pk))
        before = model._default_manager.count()
        for url in urls:
            for field in fields:
                for bad in BAD_JSON:
                    response = admin_client.post(url, {field: bad})
                    assert response.status_code == 200, (url, bad)
                    assert b"errornote" in response.content, (url, bad)
                    checked.append((model_id(model), field))
        assert model._default_manager.count() == before
    assert ("core.Automation", "config") in checked


def test_bad_json_in_automation_config_names_the_problem(admin_client):
    (automation,) = make_rows(Automation, 1)
    url = admin_url(Automation, "change", automation.pk)
    data = {
        "name": automation.name,
        "type": automation.type,
        "project": str(automation.project_id),
        "is_active": "on",
        "config": '{"webhook": "https://example.com",}',
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert b"Enter valid JSON" in response.content
    automation.refresh_from_db()
    assert automation.config == {}

    data["config"] = '{"webhook": "https://example.com", "retries": 3}'
    response = admin_client.post(url, data)
    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.config == {"webhook": "https://example.com", "retries": 3}


def test_autocomplete_survives_hostile_terms(admin_client):
    url = "/admin/autocomplete/"
    for query in [
        "term=%00&app_label=core&model_name=project&field_name=company",
        "term=" + "x" * 5000 + "&app_label=core&model_name=project&field_name=company",
        "term=a&app_label=nope&model_name=project&field_name=company",
        "term=a&app_label=core&model_name=project&field_name=nope",
        "term=a",
    ]:
        _get(admin_client, f"{url}?{query}")
