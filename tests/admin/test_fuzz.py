"""Random query strings and form data to every admin page, as each role.

Two properties hold for every request: the portal never answers 500, and the audit
trail grows by exactly the writes that were accepted. "Accepted writes" are measured
independently of the audit code: the target model's rows (columns other than
``auto_now`` ones, plus many-to-many sets) are read before and after the request, and
each row created, deleted or changed must account for one new activity entry.

Bounded: a few examples per (role, model) pair, no deadline; about a minute in all.
"""

import os
import uuid
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import ROLES
from audit.models import ActivityLog
from audit.services import TRACE_ACTIONS
from portal.admin.site import PortalAdminSite
from tests.audit.support import admin_url, form_data, login, make_user, sample_objects

pytestmark = pytest.mark.django_db
MODELS = list(admin.site._registry)
FUZZ = settings(
    # FUZZ_EXAMPLES=50 for a deeper run by hand; the suite's default keeps it short.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

odd_values = st.sampled_from(
    [
        "",
        "on",
        "true",
        "0",
        "1",
        "-1",
        "99999999999999999999",
        "2024-13-45",
        "25:61",
        "{}",
        "[]",
        '{"a": 1}',
        "null",
        "NaN",
        "' OR 1=1 --",
        "<script>x</script>",
        str(uuid.uuid4()),
        "a" * 300,
        "\x00",
        "%00",
        "../..",
        "__proto__",
    ]
)
plausible = st.sampled_from(["Fuzzed", "fuzzed@example.com", "3", "on", "active", "n8n"])
values = st.one_of(odd_values, st.text(max_size=40), st.integers().map(str))
keys = st.one_of(
    st.sampled_from(
        [
            "q",
            "o",
            "p",
            "e",
            "all",
            "_to_field",
            "_popup",
            "_changelist_filters",
            "action",
            "index",
            "select_across",
            "_selected_action",
            "post",
            "created_at__gte",
            "id__in",
            "pk__exact",
            "password__startswith",
            "user__password__startswith",
            "status__exact",
            "_save",
            "_continue",
            "_addanother",
            "_saveasnew",
            "usable_password",
            "password1",
            "password2",
            "groups",
            "permissions",
            "is_superuser",
        ]
    ),
    st.text(min_size=1, max_size=20),
)


@pytest.fixture
def clients(db):
    result = {}
    for role in ROLES:
        user = make_user(f"fuzz-{role.lower()}@example.com", role=role)
        client, response = login(user.email)
        assert response.status_code == 302
        client.raise_request_exception = True  # a 500 fails with its traceback
        result[role] = client
    return result


@pytest.fixture
def objects(db):
    return sample_objects(make_user("fuzz-owner@example.com", is_staff=False))


def state(model) -> dict:
    """The rows of ``model`` as the database has them (the oracle's own reading)."""
    fields = [f.attname for f in model._meta.concrete_fields if not getattr(f, "auto_now", 0)]
    rows = {row["pk"]: row for row in model._base_manager.values("pk", *fields)}
    for m2m in model._meta.many_to_many:
        through = m2m.remote_field.through
        own = m2m.m2m_field_name() + "_id"
        other = m2m.m2m_reverse_field_name() + "_id"
        for link in through._base_manager.values(own, other):
            rows.get(link[own], {}).setdefault(m2m.name, set()).add(link[other])
    return rows


def accepted_writes(before: dict, after: dict) -> int:
    created = after.keys() - before.keys()
    deleted = before.keys() - after.keys()
    changed = [pk for pk in before.keys() & after.keys() if before[pk] != after[pk]]
    return len(created) + len(deleted) + len(changed)


def existing_pks(model) -> list[str]:
    rows = model._base_manager.order_by("pk")
    if model._meta.label == "accounts.User":
        rows = rows.exclude(email__startswith="fuzz-")  # keep the role users logged in
    return [str(pk) for pk in rows.values_list("pk", flat=True)[:5]]


def field_names(model) -> list[str]:
    return sorted(f.name for f in model._meta.get_fields() if f.concrete or f.many_to_many)


def send(client, draw, model):
    """One random request. Every draw is made whatever the database holds, so that
    Hypothesis can replay an example (the database decides only what a draw means)."""
    view = draw(
        st.sampled_from(
            [
                "changelist",
                "changelist_post",
                "add",
                "add_post",
                "change",
                "change_post",
                "change_post",
                "delete",
                "delete_post",
                "history",
                "password_post",
            ]
        )
    )
    query = draw(st.dictionaries(keys, values, max_size=4))
    use_existing = draw(st.integers(0, 3)) > 0
    index, random_pk = draw(st.integers(0, 4)), draw(values)
    selected = draw(st.lists(st.integers(0, 5), max_size=3))
    action = draw(st.sampled_from(["delete_selected", "", "nonexistent"]))
    confirm = draw(st.booleans())
    secret = draw(st.sampled_from(["", "short", "a-Long-enough-pass-42"]))
    # Mostly small mutations of a valid form, so that some writes are accepted.
    mutations = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(field_names(model)), keys),
            values,
            max_size=draw(st.sampled_from([0, 1, 1, 3])),
        )
    )

    pks = existing_pks(model)
    pk = pks[index % len(pks)] if use_existing and pks else random_pk
    name = view.removesuffix("_post")
    if name == "password" and model._meta.label != "accounts.User":
        name = "change"
    # Object URLs are built by hand: a random "pk" need not be reversible.
    changelist = admin_url(model, "changelist")
    if name in ("change", "delete", "history", "password"):
        url = f"{changelist}{quote(pk, safe='')}/{name}/"
    else:
        url = admin_url(model, name)
    if not view.endswith("_post"):
        return client.get(url, query)
    base = {}
    if name in ("add", "change"):
        page = client.get(url)
        if page.status_code == 200 and page.context and "adminform" in page.context:
            base = form_data(page)
    elif name == "changelist":
        choices = [*pks, random_pk]
        base = {
            "action": action,
            "index": "0",
            "_selected_action": [choices[i % len(choices)] for i in selected],
        }
        if confirm:
            base["post"] = "yes"
    elif name == "delete":
        base = {"post": "yes"}
    elif name == "password":
        base = {"password1": secret, "password2": secret, "usable_password": "true"}
    suffix = "?" + "&".join(f"{quote(k)}=" for k in list(query)[:1]) if query else ""
    return client.post(url + suffix, {**base, **mutations})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
@FUZZ
@given(data=st.data())
def test_random_requests_never_fail_and_audit_exactly_the_accepted_writes(
    clients, objects, role, model, data
):
    before, entries = state(model), row_entries()
    response = send(clients[role], data.draw, model)
    assert response.status_code < 500
    after = state(model)
    writes = accepted_writes(before, after)
    if os.environ.get("FUZZ_STATS"):
        print("FUZZSTAT", role, model._meta.label, response.status_code, writes)
    assert row_entries() - entries == writes


def row_entries() -> int:
    """Entries per row written; exports, actions and cascades add an entry of their own."""
    return ActivityLog.objects.exclude(action__in=TRACE_ACTIONS).count()


def extra_pages() -> list[str]:
    urls = [
        reverse("admin:index"),
        reverse("admin:password_change"),
        reverse("admin:autocomplete"),
        reverse("admin:jsi18n"),
    ]
    for app_label in {m._meta.app_label for m in MODELS}:
        urls.append(reverse("admin:app_list", args=[app_label]))
    assert isinstance(admin.site, PortalAdminSite)
    for pattern in admin.site.extra_urls():
        try:
            urls.append(reverse(f"admin:{pattern.name}"))
        except NoReverseMatch:
            continue  # needs arguments
    return urls


@pytest.mark.parametrize("role", ROLES)
@FUZZ
@given(data=st.data())
def test_random_requests_to_the_other_admin_pages(clients, role, data):
    url = data.draw(st.sampled_from(extra_pages()))
    query = data.draw(
        st.dictionaries(
            st.one_of(keys, st.sampled_from(["app_label", "model_name", "field_name", "term"])),
            values,
            max_size=4,
        )
    )
    entries = ActivityLog.objects.count()
    client: Client = clients[role]
    assert client.get(url, query).status_code < 500
    assert client.post(url, query).status_code < 500
    assert ActivityLog.objects.count() == entries


# --- Hostile values derived from each field's type --------------------------------
#
# Every list filter, search, ordering and pagination parameter of every registered
# model's changelist (and its CSV export), and every parameter of every diagnostics
# page, gets values chosen from what the column's type cannot take: malformed and
# out-of-range numbers, non-finite floats, bad IPs, UUIDs and dates, NUL characters.
# As superuser and as Viewer, nothing may answer 500.

TYPED = settings(
    max_examples=int(os.environ.get("FUZZ_TYPED_EXAMPLES", "4")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "a\x00b", "%", "\\", "'", '"', "%00", "é" * 250, "a" * 5000]),
)
nasty_numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["1e999", "-1e999", "NaN", "inf", "-inf", "0x10", "1,5", "1.5", "-", ""]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
nasty_dates = st.sampled_from(
    ["2024-13-45", "0000-00-00", "9999-12-31T25:61", "-1", "1e9", "2024-02-30", "now", ""]
)
nasty_ips = st.sampled_from(["1", "999.1.1.1", "::g", "10.0.0.1/33", "1.2.3", "[::1]", ""])
nasty_uuids = st.one_of(st.uuids().map(lambda u: str(u)[:-1] + "g"), st.sampled_from(["x", "1"]))
nasty_booleans = st.sampled_from(["maybe", "2", "", "True", "-1", "on"])


def hostile_values(field) -> st.SearchStrategy[str]:
    from django.db import models as m

    if field.is_relation and getattr(field, "target_field", None) is not None:
        return hostile_values(field.target_field)
    if isinstance(field, m.GenericIPAddressField):
        choice = nasty_ips
    elif isinstance(field, m.UUIDField):
        choice = nasty_uuids
    elif isinstance(field, m.DateField | m.DateTimeField | m.TimeField):
        choice = nasty_dates
    elif isinstance(field, m.BooleanField):
        choice = nasty_booleans
    elif isinstance(field, m.IntegerField | m.AutoField | m.FloatField | m.DecimalField):
        choice = nasty_numbers
    else:
        choice = nasty_text
    return st.one_of(choice, nasty_text)


SUFFIXES = ["", "__exact", "__in", "__isnull", "__gte", "__lt", "__range", "__year"]


def list_params(model) -> st.SearchStrategy[dict[str, str]]:
    def lookups_of(field) -> st.SearchStrategy[tuple[str, str]]:
        names = st.sampled_from([field.name + suffix for suffix in SUFFIXES])
        return st.tuples(names, hostile_values(field))

    per_field = st.sampled_from(list(model._meta.concrete_fields)).flatmap(lookups_of)
    reserved = st.tuples(
        st.sampled_from(["q", "o", "p", "all", "e", "_to_field", "_popup"]),
        st.one_of(nasty_text, nasty_numbers, st.sampled_from(["1.2.-3", "-0", "999"])),
    )
    return st.lists(st.one_of(per_field, reserved), min_size=1, max_size=4).map(dict)


@pytest.fixture
def typed_clients(db):
    superuser = make_user("fuzz-root@example.com", is_superuser=True)
    viewer = make_user("fuzz-viewer@example.com", role="Viewer")
    result = {}
    for user in (superuser, viewer):
        client, response = login(user.email)
        assert response.status_code == 302
        client.raise_request_exception = True
        result[user.email] = client
    return result


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
@TYPED
@given(data=st.data())
def test_hostile_typed_values_in_every_list_never_fail(typed_clients, model, data):
    params = data.draw(list_params(model))
    for client in typed_clients.values():
        response = client.get(admin_url(model, "changelist"), params)
        assert response.status_code < 500, params
        try:
            export = admin_url(model, "export_csv")
        except NoReverseMatch:
            continue
        response = client.get(export, params)
        assert response.status_code < 500, params
        if response.streaming:
            b"".join(response.streaming_content)


DIAGNOSTICS_PARAMS = {
    "db": st.one_of(st.sampled_from(["default", "nope", ""]), nasty_text),
    "state": st.one_of(st.sampled_from(["active", "idle in transaction"]), nasty_text),
    "min_seconds": nasty_numbers,
    "idle_in_transaction": nasty_booleans,
    "q": nasty_text,
    "order": st.one_of(st.sampled_from(["total", "mean", "io"]), nasty_text),
    "include_portal": nasty_booleans,
}


@pytest.mark.parametrize(
    "slug",
    [
        "overview",
        "activity",
        "blocking",
        "queries",
        "space",
        "indexes",
        "maintenance",
        "settings",
        "privileges",
        "replication",
    ],
)
@TYPED
@given(data=st.data())
def test_hostile_values_on_every_diagnostics_page_never_fail(typed_clients, slug, data):
    keys = data.draw(st.lists(st.sampled_from(sorted(DIAGNOSTICS_PARAMS)), max_size=4))
    params = {k: data.draw(DIAGNOSTICS_PARAMS[k]) for k in keys}
    url = reverse("admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}")
    for client in typed_clients.values():
        assert client.get(url, params).status_code < 500, params
