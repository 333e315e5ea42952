"""Concurrent saves of a change page's inline rows: no lost update, no false history.

The page is the project change form with its automations inline (tests/admin/inline_site.py,
the portal's own ModelAdmin base and site class). Real clients, each with its own
PostgreSQL connection; the rows are committed (transactional_db) so every connection
sees the others' saves.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from accounts.models import Company, User
from audit.models import ActivityLog
from core.models import Automation, Project
from tests.admin.support import form_data

pytestmark = pytest.mark.urls("tests.admin.inline_site")

PASSWORD = "a-long-password-1"


@pytest.fixture
def project(transactional_db):
    root = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    company = Company.objects.create(name="Acme")
    project = Project.objects.create(name="Gateway", company=company, owner=root)
    Automation.objects.create(project=project, name="alpha", type="n8n")
    Automation.objects.create(project=project, name="beta", type="mautic")
    return project


def _client() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(email="root@example.com"))
    return client


def _url(project: Project) -> str:
    return f"/inline/core/project/{project.pk}/change/"


def _form(client: Client, project: Project) -> dict[str, str | list[str]]:
    page = client.get(_url(project))
    assert page.status_code == 200
    return form_data(page.content.decode())


def _row(form: dict, name: str) -> str:
    """The inline prefix (``automations-N``) of the row showing automation ``name``."""
    for key, value in form.items():
        if key.endswith("-name") and value == name and "__prefix__" not in key:
            return key.removesuffix("-name")
    raise AssertionError(f"no inline row {name!r} in the form")


def _names(project: Project) -> list[str]:
    return sorted(Automation.objects.filter(project=project).values_list("name", flat=True))


def test_the_page_carries_a_version_of_its_inline_rows(project):
    form = _form(_client(), project)
    assert form.get("_portal_version")
    assert form.get("_portal_inline_version")
    assert form["automations-INITIAL_FORMS"] == "2"


def test_a_stale_inline_row_is_refused_and_named(project):
    alice, bob = _client(), _client()
    alice_form, bob_form = _form(alice, project), _form(bob, project)

    saved = alice.post(_url(project), {**alice_form, f"{_row(alice_form, 'alpha')}-name": "alpha2"})
    assert saved.status_code == 302
    # Bob changes the other row only; his form still shows "alpha" in the first row,
    # which would put the old name back.
    refused = bob.post(_url(project), {**bob_form, f"{_row(bob_form, 'beta')}-name": "beta2"})

    assert refused.status_code == 200
    page = refused.content.decode()
    assert "The automation “alpha2” was changed by someone else after you opened the page" in page
    assert "name (now &#x27;alpha2&#x27;)" in page
    assert "Nothing was saved" in page
    assert _names(project) == ["alpha2", "beta"]
    # Saving again from the re-shown form overwrites knowingly.
    again = bob.post(_url(project), form_data(page))
    assert again.status_code == 302
    assert _names(project) == ["alpha", "beta2"]


def test_a_row_changed_only_outside_the_form_does_not_block_a_save(project):
    client = _client()
    form = _form(client, project)
    # A column the inline does not show (config) is not overwritten by the save.
    Automation.objects.filter(name="alpha").update(config={"set": "elsewhere"})
    saved = client.post(_url(project), {**form, f"{_row(form, 'beta')}-name": "beta2"})
    assert saved.status_code == 302
    assert _names(project) == ["alpha", "beta2"]
    assert Automation.objects.get(name="alpha").config == {"set": "elsewhere"}


def test_deleting_a_row_someone_else_changed_is_refused(project):
    alice, bob = _client(), _client()
    alice_form, bob_form = _form(alice, project), _form(bob, project)
    alpha = _row(alice_form, "alpha")
    assert alice.post(_url(project), {**alice_form, f"{alpha}-name": "alpha2"}).status_code == 302

    refused = bob.post(_url(project), {**bob_form, f"{_row(bob_form, 'alpha')}-DELETE": "on"})

    assert refused.status_code == 200
    assert "“alpha2” was changed by someone else" in refused.content.decode()
    assert _names(project) == ["alpha2", "beta"]
    assert not ActivityLog.objects.filter(resource_type="core.automation", action="delete").exists()


def test_a_row_deleted_meanwhile_is_not_written_again(project):
    client = _client()
    form = _form(client, project)
    Automation.objects.filter(name="alpha").delete()
    for change in (
        {f"{_row(form, 'alpha')}-name": "alpha2"},
        {f"{_row(form, 'alpha')}-DELETE": "on"},
    ):
        refused = client.post(_url(project), {**form, **change})
        assert refused.status_code == 200
        assert "was deleted by someone else after you opened the page" in refused.content.decode()
    assert _names(project) == ["beta"]
    assert not ActivityLog.objects.filter(resource_type="core.automation").exists()


def test_a_row_added_meanwhile_is_kept(project):
    client = _client()
    form = _form(client, project)
    Automation.objects.create(project=project, name="gamma", type="typebot")
    saved = client.post(_url(project), {**form, f"{_row(form, 'beta')}-name": "beta2"})
    assert saved.status_code == 302
    assert _names(project) == ["alpha", "beta2", "gamma"]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda form, other: {**form, "_portal_inline_version": "forged"}, id="forged"),
        pytest.param(
            lambda form, other: {k: v for k, v in form.items() if k != "_portal_inline_version"},
            id="missing",
        ),
        pytest.param(
            lambda form, other: {**form, "_portal_inline_version": other["_portal_inline_version"]},
            id="another-project",
        ),
    ],
)
def test_a_forged_or_missing_inline_version_is_refused(project, tamper):
    client = _client()
    other = Project.objects.create(name="Other", company=project.company, owner=project.owner)
    Automation.objects.create(project=other, name="delta", type="n8n")
    form = _form(client, project)
    other_form = _form(client, other)
    posted = tamper({**form, f"{_row(form, 'alpha')}-name": "forged"}, other_form)
    response = client.post(_url(project), posted)
    assert response.status_code == 200
    assert "another version of the page" in response.content.decode()
    assert _names(project) == ["alpha", "beta"]


def test_a_row_missing_from_the_version_is_refused(project):
    """A posted row the page's version does not list (the version of an older page,
    before the row existed) is not written unchecked."""
    client = _client()
    old_form = _form(client, project)
    Automation.objects.create(project=project, name="gamma", type="typebot")
    form = _form(client, project)
    posted = {**form, "_portal_inline_version": old_form["_portal_inline_version"]}
    posted[f"{_row(form, 'gamma')}-name"] = "gamma2"
    response = client.post(_url(project), posted)
    assert response.status_code == 200
    assert "another version of the page" in response.content.decode()
    assert _names(project) == ["alpha", "beta", "gamma"]


def test_concurrent_inline_saves_lose_nothing_and_the_history_is_true(project):
    """Four clients, each renaming its own row of the same page in a loop, from a page it
    re-reads after every save or refusal. A stale page would put the other rows' old
    names back; here every committed save changes only its client's row, is audited
    once, and each row's entries chain from its original name to its stored one, each
    "old" value being the one the previous committed save wrote."""
    rounds, clients = 5, 4
    for extra in ("gamma", "delta"):
        Automation.objects.create(project=project, name=extra, type="typebot")
    originals = ["alpha", "beta", "gamma", "delta"]
    rows = [Automation.objects.get(name=name) for name in originals]
    errors: list[BaseException] = []
    outcomes: list[tuple[int, str, int]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            client = _client()
            for i in range(rounds):
                form = _form(client, project)
                row = next(
                    k.removesuffix("-id")
                    for k, v in form.items()
                    if k.endswith("-id") and v == str(rows[n].pk)
                )
                response = client.post(_url(project), {**form, f"{row}-name": f"c{n}-{i}"})
                with lock:
                    outcomes.append((n, f"c{n}-{i}", response.status_code))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert not errors, errors
    # Saved, refused as stale, or (on a slow machine) gave up waiting for the row lock.
    assert {status for _, _, status in outcomes} <= {200, 302, 503}
    assert any(status == 302 for _, _, status in outcomes), "no save went through"
    assert not ActivityLog.objects.filter(resource_type="core.automation", action="delete").exists()
    for n, automation in enumerate(rows):
        saved = [value for client, value, status in outcomes if client == n and status == 302]
        changes = [
            e.details["changes"]["name"]
            for e in ActivityLog.objects.filter(
                resource_type="core.automation", resource_id=str(automation.pk), action="change"
            )
        ]
        # Only this row's own client changed it, once per committed save.
        assert sorted(c["new"] for c in changes) == sorted(saved), (originals[n], changes)
        following = {c["old"]: c["new"] for c in changes}
        assert len(following) == len(changes), "two saves claim to have overwritten one value"
        value, walked = originals[n], 0
        while value in following:
            value, walked = following[value], walked + 1
        assert walked == len(changes)
        automation.refresh_from_db()
        assert automation.name == value == (saved[-1] if saved else originals[n])
