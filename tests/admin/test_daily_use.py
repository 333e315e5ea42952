"""What the admin's daily users need: one-sided date ranges, failures in sight, links
between related rows, counts that are honest after a bulk load, search by what the
list shows, readable long content, one set of units, and spreadsheet-ready CSV."""

import datetime
import re
import uuid

import pytest
from django.utils import timezone

from core.models import CodexSession, ExecutionHistory

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
