"""What the admin's daily users need: one-sided date ranges, failures in sight, links
between related rows, counts that are honest after a bulk load, search by what the
list shows, readable long content, one set of units, and spreadsheet-ready CSV."""

import datetime
import re
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from core.models import CodexSession, ExecutionHistory
from portal.admin.estimates import (
    RowCount,
    count_rows,
    humanize,
    planner_estimate,
    statistics_stale,
)

pytestmark = pytest.mark.django_db

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
