"""What the admin's daily users need: one-sided date ranges, failures in sight, links
between related rows, counts that are honest after a bulk load, search by what the
list shows, readable long content, one set of units, and spreadsheet-ready CSV."""

import datetime
import re
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from core.models import CodexSession, ExecutionHistory, SandboxExecution
from portal.admin.changelist import uuid_prefix_range
from portal.admin.estimates import (
    RowCount,
    count_rows,
    humanize,
    planner_estimate,
    statistics_stale,
)

pytestmark = pytest.mark.django_db
ZEROS = "0000-0000-0000-000000000000"

SESSIONS = "/admin/core/codexsession/"
EXECUTIONS = "/admin/core/executionhistory/"


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _session(**kwargs) -> CodexSession:
    values = {"user_id": "user-1", "model": "gpt-5", "status": "completed"} | kwargs
    return CodexSession.objects.create(session_id=uuid.uuid4(), **values)


def _at(session: CodexSession, moment: datetime.datetime) -> None:
    CodexSession.objects.filter(pk=session.pk).update(created_at=moment)


# --- Date ranges ------------------------------------------------------------------------


def test_a_one_sided_range_with_an_empty_until_is_not_an_error(admin_client):
    old, new = _session(user_id="old"), _session(user_id="new")
    _at(old, timezone.now() - datetime.timedelta(days=30))
    since = (timezone.localdate() - datetime.timedelta(days=2)).isoformat()
    response = admin_client.get(SESSIONS, {"created_at__gte": since, "created_at__lt": ""})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert [s.pk for s in response.context["cl"].result_list] == [new.pk]
    assert "were not valid" not in _text(response)


def test_a_one_sided_range_with_an_empty_from_is_not_an_error(admin_client):
    old, _new = _session(user_id="old"), _session(user_id="new")
    _at(old, timezone.now() - datetime.timedelta(days=30))
    until = (timezone.localdate() - datetime.timedelta(days=2)).isoformat()
    response = admin_client.get(SESSIONS, {"created_at__gte": "", "created_at__lt": until})
    assert response.status_code == 200
    assert [s.pk for s in response.context["cl"].result_list] == [old.pk]


def test_until_includes_the_whole_chosen_day(admin_client):
    day = timezone.localdate() - datetime.timedelta(days=3)
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time(0)))
    inside = [start, start + datetime.timedelta(hours=23, minutes=59, seconds=59)]
    outside = [start - datetime.timedelta(seconds=1), start + datetime.timedelta(days=1)]
    made = {}
    for moment in inside + outside:
        s = _session(user_id=moment.isoformat())
        _at(s, moment)
        made[s.pk] = moment
    response = admin_client.get(
        SESSIONS, {"created_at__gte": day.isoformat(), "created_at__lt": day.isoformat()}
    )
    found = {made[s.pk] for s in response.context["cl"].result_list}
    assert found == set(inside)
    # The form shows the day that was chosen, not the exclusive bound.
    assert f'value="{day.isoformat()}"' in response.content.decode()


def test_a_malformed_date_is_still_refused_with_the_message(admin_client):
    response = admin_client.get(SESSIONS, {"created_at__gte": "yesterday"})
    assert response.status_code == 302
    assert "e=1" in response["Location"]


# --- Counts after a bulk change -----------------------------------------------------------


def _load_then_delete(keep: int) -> None:
    """40,000 executions analyzed, then all but ``keep`` deleted without a new ANALYZE:
    the planner still expects about 40,000 rows (the state right after a bulk change)."""
    session = _session()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core.execution_history (session_id, prompt, tokens_used) "
            "SELECT %(s)s, 'p' || g, g FROM generate_series(1, 40000) g",
            {"s": session.pk},
        )
        cursor.execute("ANALYZE core.execution_history")
        cursor.execute("DELETE FROM core.execution_history WHERE tokens_used > %(k)s", {"k": keep})
        # Statistics reach pg_stat_user_tables when the backend next reports them.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")


@pytest.mark.django_db(transaction=True)
def test_stale_statistics_are_not_shown_as_a_count(admin_client):
    _load_then_delete(3_748)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM core.execution_history")
        assert cursor.fetchone()[0] == 3_748
    assert planner_estimate(ExecutionHistory.objects.all()) > 30_000  # the stale figure
    assert statistics_stale(ExecutionHistory, "default")
    assert count_rows(ExecutionHistory.objects.all()) == RowCount(3_748, "exact")
    response = admin_client.get(EXECUTIONS)
    cl = response.context["cl"]
    assert cl.count_display == "3,748"
    assert cl.paginator.num_pages == 75  # 3,748 / 50, not the capped 200


@pytest.mark.django_db(transaction=True)
def test_fresh_statistics_keep_the_cheap_estimate():
    _load_then_delete(40_000)  # nothing deleted
    assert not statistics_stale(ExecutionHistory, "default")
    assert count_rows(ExecutionHistory.objects.all()).kind == "estimate"


@pytest.mark.django_db(transaction=True)
def test_stale_statistics_over_the_bound_say_more_than(monkeypatch):
    from portal.admin import estimates

    monkeypatch.setattr(estimates, "STALE_EXACT_BELOW", 2_000)
    _load_then_delete(3_748)
    count = count_rows(ExecutionHistory.objects.all())
    assert count == RowCount(2_001, "at_least")
    assert humanize(count) == "more than 2,000"


# --- Search by what the list shows ----------------------------------------------------------


def _changelist(rf, admin_user, model, query: str):
    from django.contrib import admin

    request = rf.get(f"/admin/?{query}")
    request.user = admin_user
    return admin.site._registry[model].get_changelist_instance(request)


def test_the_eight_characters_a_list_shows_find_the_session(admin_client):
    sessions = [_session(user_id=f"u{i}") for i in range(30)]
    target = sessions[7]
    shown = str(target.pk)[:8]
    response = admin_client.get(SESSIONS)
    assert f"{shown}…" in response.content.decode()  # what the list shows...
    response = admin_client.get(SESSIONS, {"q": shown})  # ...is what finds it
    found = [s.pk for s in response.context["cl"].result_list]
    assert found == [s.pk for s in sessions if str(s.pk).startswith(shown)]
    assert target.pk in found
    # With the dash too, as a UUID is written.
    response = admin_client.get(SESSIONS, {"q": str(target.pk)[:13]})
    assert [s.pk for s in response.context["cl"].result_list] == [target.pk]


def test_the_beginning_of_a_user_id_finds_its_sessions(admin_client):
    mine = [_session(user_id="usr_3fa9c0d2e1b4"), _session(user_id="usr_3fa9c0d2e1b4")]
    _session(user_id="usr_77aa00")
    _session(user_id="x-usr_3fa9")  # contains it, does not start with it
    response = admin_client.get(SESSIONS, {"q": "usr_3fa9"})
    assert {s.pk for s in response.context["cl"].result_list} == {s.pk for s in mine}
    # LIKE wildcards in the term are literal characters.
    response = admin_client.get(SESSIONS, {"q": "usr_%"})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    ("prefix", "low", "high"),
    [
        ("3f2a9c1e", "3f2a9c1e-" + ZEROS, "3f2a9c1f-" + ZEROS),
        ("3F2A-9C", "3f2a9c00-" + ZEROS, "3f2a9d00-" + ZEROS),
        ("abff", "abff0000-" + ZEROS, "ac000000-" + ZEROS),
        ("ffff", "ffff0000-" + ZEROS, None),
    ],
)
def test_uuid_prefix_ranges(prefix, low, high):
    bounds = uuid_prefix_range(prefix)
    assert bounds is not None
    assert str(bounds[0]) == low
    assert (str(bounds[1]) if bounds[1] else None) == high


@given(st.uuids(), st.integers(min_value=4, max_value=31))
def test_a_prefix_range_holds_exactly_the_uuids_with_that_prefix(value, length):
    text = value.hex
    low, high = uuid_prefix_range(text[:length])
    assert low <= value and (high is None or value < high)
    # The neighbours just outside the range do not share the prefix.
    below = int(low.hex, 16) - 1
    if below >= 0:
        assert not f"{below:032x}".startswith(text[:length])
    if high is not None:
        assert not high.hex.startswith(text[:length])


@pytest.mark.parametrize("term", ["abc", "zzzzzzzz", "g1234567", "", "-" * 8])
def test_what_is_not_a_uuid_prefix(term):
    assert uuid_prefix_range(term) is None


def test_session_prefix_and_user_prefix_search_use_indexes(rf, admin_user):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core.codex_sessions (session_id, user_id, model, status) "
            "SELECT gen_random_uuid(), 'usr_' || md5(g::text), 'gpt-5', 'completed' "
            "FROM generate_series(1, 20000) g"
        )
        cursor.execute("ANALYZE core.codex_sessions")
    for term, index in (
        ("3f2a9c1e", "codex_sessions_pkey"),
        ("usr_3fa9", "codex_sessions_user_prefix_idx"),
    ):
        queryset = _changelist(rf, admin_user, CodexSession, f"q={term}").queryset
        plan = queryset[:50].explain()
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan


def test_execution_and_sandbox_lists_find_a_session_by_its_prefix(admin_client):
    session, other = _session(), _session()
    ExecutionHistory.objects.create(session=session, prompt="mine")
    ExecutionHistory.objects.create(session=other, prompt="other")
    SandboxExecution.objects.create(session=session, sql_query="select 1")
    SandboxExecution.objects.create(session=other, sql_query="select 2")
    shown = str(session.pk)[:8]
    response = admin_client.get(EXECUTIONS, {"q": shown})
    assert [e.prompt for e in response.context["cl"].result_list] == ["mine"]
    response = admin_client.get("/admin/core/sandboxexecution/", {"q": shown})
    assert [r.sql_query for r in response.context["cl"].result_list] == ["select 1"]
