"""Concurrent saves of one change form: no lost update, no false history.

Real threads, each with its own PostgreSQL connection and its own logged-in client,
load a user's change form and save it; the rows are committed (transactional_db) so
every connection sees the others' saves.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from accounts.models import Company, User
from audit.models import ActivityLog
from tests.admin.support import form_data as _form_data

PASSWORD = "a-long-password-1"


@pytest.fixture
def target(transactional_db):
    User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    company = Company.objects.create(name="Acme")
    return User.objects.create_user(
        email="target@example.com",
        password=PASSWORD,
        first_name="Ann",
        last_name="Lee",
        company=company,
    )


def _client() -> Client:
    # A save that waits too long for another one's row lock answers 503 (counted below).
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(email="root@example.com"))
    return client


def _url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_a_stale_form_is_refused_and_names_what_changed(target):
    alice, bob = _client(), _client()
    alice_form = _form_data(alice.get(_url(target)).content.decode())
    bob_form = _form_data(bob.get(_url(target)).content.decode())
    assert alice_form.get("_portal_version")

    saved = alice.post(_url(target), {**alice_form, "first_name": "Anna"})
    assert saved.status_code == 302
    refused = bob.post(_url(target), {**bob_form, "last_name": "Leigh"})

    assert refused.status_code == 200
    page = refused.content.decode()
    assert "was changed by someone else after you opened it" in page
    assert "first name (now &#x27;Anna&#x27;)" in page
    target.refresh_from_db()
    assert (target.first_name, target.last_name) == ("Anna", "Lee")  # nothing of Bob's
    # Saving again from the re-shown form overwrites knowingly.
    again = bob.post(_url(target), {**_form_data(page), "last_name": "Leigh"})
    assert again.status_code == 302
    target.refresh_from_db()
    assert target.last_name == "Leigh"


def test_a_forged_version_is_refused(target):
    client = _client()
    form = _form_data(client.get(_url(target)).content.decode())
    response = client.post(_url(target), {**form, "_portal_version": "forged", "first_name": "X"})
    assert response.status_code == 200
    assert "another version of the page" in response.content.decode()
    target.refresh_from_db()
    assert target.first_name == "Ann"


def test_concurrent_saves_lose_nothing_and_the_history_is_true(target):
    """Four clients, each saving its own field value in a loop from a form it re-reads
    after every save or refusal. Every committed save is audited once, with the "old"
    value equal to the value the previous committed save wrote."""
    rounds, clients = 8, 4
    errors: list[BaseException] = []
    outcomes: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            client = _client()
            for i in range(rounds):
                form = _form_data(client.get(_url(target)).content.decode())
                response = client.post(_url(target), {**form, "first_name": f"c{n}-{i}"})
                with lock:
                    outcomes.append((f"c{n}-{i}", response.status_code))
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
    assert {status for _, status in outcomes} <= {200, 302, 503}
    saved = [value for value, status in outcomes if status == 302]
    assert saved, "no save went through"
    entries = list(
        ActivityLog.objects.filter(
            resource_type="accounts.user", resource_id=str(target.pk), action="change"
        )
    )
    changes = [e.details["changes"]["first_name"] for e in entries]
    assert len(changes) == len(saved)
    assert sorted(c["new"] for c in changes) == sorted(saved)
    # A true history: the entries chain, each one's old value being the value another
    # entry wrote (or the original), from "Ann" to the stored value, with no gap or fork.
    following = {c["old"]: c["new"] for c in changes}
    assert len(following) == len(changes), "two saves claim to have overwritten one value"
    value, walked = "Ann", 0
    while value in following:
        value, walked = following[value], walked + 1
    assert walked == len(changes)
    target.refresh_from_db()
    assert target.first_name == value
    # Nothing else was touched by any save.
    assert (target.last_name, target.email) == ("Lee", "target@example.com")


def test_only_a_page_that_can_be_saved_carries_a_version(target):
    """A read-only page (execution history, the audit trail) gets no version token: no
    save can come back with it. A page that can be saved does."""
    import uuid

    from core.models import CodexSession, ExecutionHistory

    session = CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m")
    execution = ExecutionHistory.objects.create(session=session, prompt="p")
    client = _client()
    read_only = client.get(f"/admin/core/executionhistory/{execution.pk}/change/")
    assert read_only.status_code == 200
    assert b'name="_portal_version"' not in read_only.content
    editable = client.get(_url(target))
    assert b'name="_portal_version"' in editable.content
