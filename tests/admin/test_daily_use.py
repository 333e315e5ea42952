"""What the admin's daily users need: one-sided date ranges, failures in sight, links
between related rows, counts that are honest after a bulk load, search by what the
list shows, readable long content, one set of units, and spreadsheet-ready CSV."""

import collections
import csv
import datetime
import html
import io
import re
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.formats import date_format
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from accounts.models import Company, OAuthAccount, User
from core.models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    ExecutionHour,
    Project,
    SandboxExecution,
)
from core.pricing import estimate_cost
from core.story import Failure, failure_reason
from portal.admin.changelist import parse_uuid, uuid_prefix_range
from portal.admin.display import duration_ms
from portal.admin.estimates import (
    RowCount,
    count_rows,
    humanize,
    planner_estimate,
    statistics_stale,
)
from tests.db import roles

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
    # Validated before any SQL (portal/admin/validation.py): the bad filter is dropped,
    # named in a message, and the list shows without it.
    response = admin_client.get(SESSIONS, {"created_at__gte": "yesterday"})
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("created_at__gte" in m for m in shown), shown
    assert "created_at__gte" not in response.context["cl"].params


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
        # The insert's counts must reach pg_stat_user_tables before ANALYZE resets them,
        # or they land afterwards and the fresh statistics look stale.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")
    roles.analyze("core.execution_history")
    with connection.cursor() as cursor:
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
    found = uuid_prefix_range(text[:length])
    assert found is not None
    low, high = found
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


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_session_prefix_and_user_prefix_search_use_indexes(rf, admin_user):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core.codex_sessions (session_id, user_id, model, status) "
            "SELECT gen_random_uuid(), 'usr_' || md5(g::text), 'gpt-5', 'completed' "
            "FROM generate_series(1, 20000) g"
        )
    roles.analyze("core.codex_sessions")
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


# --- The session page tells the story ---------------------------------------------------------


def _user(email="dana@example.com", **kwargs):
    return User.objects.create_user(email=email, password="x-Pa55word-long", **kwargs)


def test_a_failed_sessions_reason_is_at_the_top_of_its_page(admin_client):
    metadata = {"a_first_key": 1, "zz": "x" * 50, "error": {"code": "upstream_5xx"}}
    session = _session(status="failed", metadata=metadata)
    page = admin_client.get(f"{SESSIONS}{session.pk}/change/").content.decode()
    reason = page.index('class="portal-failure-reason">upstream_5xx<')
    assert reason < page.index("<fieldset")  # above every field
    assert 'role="alert"' in page


def test_a_timeout_reason_uses_the_one_duration_format():
    failure = failure_reason({"error": {"code": "timeout", "after_ms": 600_000}})
    assert failure is not None and failure.summary == "timeout · after 10.0 min"
    assert failure_reason({"repo": "x"}) is None
    assert failure_reason({"error": "boom", "traceback": "Traceback..."}) == Failure(
        "boom", "Traceback..."
    )


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0 ms"), (999, "999 ms"), (1000, "1.0 s"), (24_631, "24.6 s"), (600_000, "10.0 min")],
)
def test_one_duration_format(ms, text):
    assert duration_ms(ms) == text


def test_the_timeline_shows_time_tokens_duration_and_gaps(admin_client):
    session = _session(model="gpt-5")
    start = session.created_at
    for i, (offset_s, ms, tokens) in enumerate([(10, 2_000, 1_000), (20, 4_000, 3_000)]):
        e = ExecutionHistory.objects.create(
            session=session, prompt=f"step {i}", tokens_used=tokens, execution_time_ms=ms
        )
        ExecutionHistory.objects.filter(pk=e.pk).update(
            created_at=start + datetime.timedelta(seconds=offset_s)
        )
    response = admin_client.get(f"{SESSIONS}{session.pk}/change/")
    steps = response.context["story"]["steps"]
    assert [s.offset for s in steps] == ["+10.0 s", "+20.0 s"]
    # Recorded 10 s apart, the second ran 4 s: idle for 6 s before it.
    assert [s.gap for s in steps] == ["", "6.0 s"]
    assert [s.duration for s in steps] == ["2.0 s", "4.0 s"]
    story = response.context["story"]
    assert (story["executions"], story["tokens"], story["time"]) == ("2", "4,000", "6.0 s")
    # 4,000 tokens at the configured price of gpt-5 per million tokens.
    expected = Decimal(str(settings.PORTAL_MODEL_PRICES["gpt-5"])) * 4_000 / 1_000_000
    assert story["cost"] == f"${expected.quantize(Decimal('0.01')):,.2f}"
    assert "ms</td>" not in response.content.decode().replace("0 ms</td>", "")


@pytest.mark.parametrize("shown", [3, 100])
def test_the_story_totals_are_the_sums_of_every_execution(admin_client, monkeypatch, shown):
    """Whether the timeline holds every execution (its rows give the totals) or not (a
    query does), the totals are the database's own sums, missing figures counted as 0."""
    from django.contrib import admin
    from django.db.models import Count, Sum

    monkeypatch.setattr(admin.site._registry[CodexSession], "timeline_shown", shown)
    session = _session()
    for tokens, ms in [(1_000, 2_000), (None, 500), (250, None), (4_000, 1_500), (None, None)]:
        ExecutionHistory.objects.create(
            session=session, prompt="p", tokens_used=tokens, execution_time_ms=ms
        )
    expected = ExecutionHistory.objects.filter(session=session).aggregate(
        n=Count("*"), tokens=Sum("tokens_used"), ms=Sum("execution_time_ms")
    )
    story = admin_client.get(f"{SESSIONS}{session.pk}/change/").context["story"]
    assert story["executions"] == str(expected["n"])
    assert story["tokens"] == f"{expected['tokens']:,}"
    assert story["time"] == duration_ms(expected["ms"])
    assert story["more"] == max(expected["n"] - shown, 0)
    assert len(story["steps"]) == min(expected["n"], shown)


def test_cost_estimates_follow_the_price_table(settings):
    settings.PORTAL_MODEL_PRICES = {"m": 2.5}
    assert estimate_cost("m", 1_000_000) == Decimal("2.50")
    assert estimate_cost("m", 1_234) == Decimal("0.00")
    assert estimate_cost("unknown", 10) is None


def _links(html: str) -> dict[str, str]:
    block = html[html.index('class="portal-related"') :]
    block = block[: block.index("</ul>")]
    return {
        re.sub(r"<[^>]+>", "", label).strip(): href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]+)">(.*?)</a>', block)
    }


def test_session_links_lead_to_filtered_lists_of_exactly_its_rows(admin_client):
    company = Company.objects.create(name="Acme", domain="acme.example")
    user = _user(keycloak_id="kc-42", company=company)
    project = Project.objects.create(name="infra", company=company, owner=user)
    session = _session(user_id="kc-42", metadata={"project_id": str(project.pk)})
    other = _session(user_id="kc-42")
    _session(user_id="someone-else")
    SandboxExecution.objects.create(session=session, sql_query="select 1")
    SandboxExecution.objects.create(session=other, sql_query="select 2")
    ExecutionHistory.objects.create(session=session, prompt="p")
    links = _links(admin_client.get(f"{SESSIONS}{session.pk}/change/").content.decode())
    assert links["User dana@example.com"] == f"/admin/accounts/user/{user.pk}/change/"
    assert links["Project infra (Acme)"] == f"/admin/core/project/{project.pk}/change/"
    expected_rows = {
        "Sessions of caller kc-42": {session.pk, other.pk},
        "Executions": set(
            ExecutionHistory.objects.filter(session=session).values_list("pk", flat=True)
        ),
        "Sandbox runs": set(
            SandboxExecution.objects.filter(session=session).values_list("pk", flat=True)
        ),
        "Audit entries": set(),
    }
    for label, rows in expected_rows.items():
        response = admin_client.get(links[label])
        assert response.status_code == 200, (label, links[label])
        assert {r.pk for r in response.context["cl"].result_list} == rows, label


def test_user_and_company_links_lead_to_their_rows(admin_client):
    company = Company.objects.create(name="Acme", domain="acme.example")
    user = _user(keycloak_id="kc-7", company=company)
    by_email, by_kc = _session(user_id=user.email), _session(user_id="kc-7")
    by_opaque = _session(user_id=f"usr_{user.pk.hex[:24]}")
    _session(user_id="kc-8")
    project = Project.objects.create(name="infra", company=company, owner=user)
    OAuthAccount.objects.create(user=user, provider="google", provider_account_id="g-1")
    mine = {by_email.pk, by_kc.pk, by_opaque.pk}
    links = _links(admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode())
    sessions = admin_client.get(links["Agent sessions"])
    assert {s.pk for s in sessions.context["cl"].result_list} == mine
    projects = admin_client.get(links["Projects owned"])
    assert [p.pk for p in projects.context["cl"].result_list] == [project.pk]
    oauth = admin_client.get(links["OAuth accounts"])
    assert len(oauth.context["cl"].result_list) == 1
    for label in ("Audit entries by this user", "Audit entries about this user", "Security events"):
        assert admin_client.get(links[label]).status_code == 200, label
    links = _links(
        admin_client.get(f"/admin/accounts/company/{company.pk}/change/").content.decode()
    )
    sessions = admin_client.get(links["Agent sessions of its users"])
    assert {s.pk for s in sessions.context["cl"].result_list} == mine
    for label in ("Users", "Projects", "OAuth accounts", "Audit entries"):
        response = admin_client.get(links[label])
        assert response.status_code == 200, label
    assert len(admin_client.get(links["OAuth accounts"]).context["cl"].result_list) == 1
    links = _links(admin_client.get(f"/admin/core/project/{project.pk}/change/").content.decode())
    Automation.objects.create(name="sync", type="n8n", project=project)
    response = admin_client.get(links["Automations"])
    assert [a.name for a in response.context["cl"].result_list] == ["sync"]


def test_previous_and_next_execution_within_the_session(admin_client):
    session, other = _session(), _session()
    rows = [ExecutionHistory.objects.create(session=session, prompt=f"s{i}") for i in range(3)]
    ExecutionHistory.objects.create(session=other, prompt="elsewhere")
    same_moment = rows[0].created_at
    ExecutionHistory.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=same_moment)

    def links(row):
        page = admin_client.get(f"{EXECUTIONS}{row.pk}/change/").content.decode()
        link = r'href="/admin/core/executionhistory/(\d+)/change/" rel="(prev|next)"'
        found = re.findall(link, page)
        return {rel: int(pk) for pk, rel in found}

    # The newest id but the earliest time: time orders, ties on the time are ordered by
    # id, and the other session's execution is never a neighbour.
    earliest = ExecutionHistory.objects.create(session=session, prompt="early")
    ExecutionHistory.objects.filter(pk=earliest.pk).update(
        created_at=same_moment - datetime.timedelta(microseconds=1)
    )
    assert links(earliest) == {"next": rows[0].pk}
    assert links(rows[0]) == {"prev": earliest.pk, "next": rows[1].pk}
    assert links(rows[1]) == {"prev": rows[0].pk, "next": rows[2].pk}
    assert links(rows[2]) == {"prev": rows[1].pk}


@examples(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=9),
    others=st.lists(st.integers(min_value=0, max_value=3), max_size=4),
)
def test_neighbours_are_the_sorted_order_of_the_session(offsets, others):
    """Against sorting in Python: any mix of times, many of them equal (ties go by id),
    beside another session's executions at the same times."""
    from core import selectors

    with transaction.atomic():
        start = timezone.now().replace(microsecond=0)
        session, other = _session(), _session()
        mine = []
        for owner, minutes in [(session, m) for m in offsets] + [(other, m) for m in others]:
            row = ExecutionHistory.objects.create(session=owner, prompt="p")
            moment = start + datetime.timedelta(minutes=minutes)
            ExecutionHistory.objects.filter(pk=row.pk).update(created_at=moment)
            if owner is session:
                mine.append((moment, row.pk))
        order = [pk for _, pk in sorted(mine)]
        expected = {
            pk: (order[i - 1] if i else None, order[i + 1] if i + 1 < len(order) else None)
            for i, pk in enumerate(order)
        }
        rows = ExecutionHistory.objects.filter(session=session).annotate(
            **selectors.neighbour_annotations()
        )
        # Annotations the type checker cannot see: read from the instance's values.
        got = {r.pk: (vars(r)["previous_id"], vars(r)["next_id"]) for r in rows}
        assert got == expected
        transaction.set_rollback(True)


# --- Failures in sight -------------------------------------------------------------------------


def test_the_dashboard_lists_the_latest_failed_sessions(admin_client):
    old = _session(status="failed", metadata={"error": {"code": "sandbox_crashed"}})
    _at(old, timezone.now() - datetime.timedelta(days=3))
    new = _session(status="timeout", metadata={"error": {"code": "timeout", "after_ms": 5000}})
    _session(status="completed")
    response = admin_client.get("/admin/")
    rows = response.context["failed_sessions"]
    assert [r["id"] for r in rows] == [str(new.pk), str(old.pk)]
    assert [r["reason"] for r in rows] == ["timeout · after 5.0 s", "sandbox_crashed"]


def test_the_execution_list_filters_failed_sessions(admin_client):
    failed, ok = _session(status="failed"), _session(status="completed")
    ExecutionHistory.objects.create(session=failed, prompt="bad", response="x")
    ExecutionHistory.objects.create(session=ok, prompt="good", response=None)
    response = admin_client.get(EXECUTIONS, {"outcome": "failed_session"})
    assert [e.prompt for e in response.context["cl"].result_list] == ["bad"]
    response = admin_client.get(EXECUTIONS, {"outcome": "no_response"})
    assert [e.prompt for e in response.context["cl"].result_list] == ["good"]
    assert admin_client.get(EXECUTIONS, {"outcome": "bogus"}).status_code == 302


def test_the_dashboard_charts_come_from_the_hourly_rollup(admin_client):
    now = timezone.now()
    hour = now.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    target = hour - datetime.timedelta(hours=30)
    session = _session(status="failed")
    _at(session, target + datetime.timedelta(minutes=5))
    for _ in range(3):
        e = ExecutionHistory.objects.create(session=session, prompt="p", tokens_used=100)
        ExecutionHistory.objects.filter(pk=e.pk).update(
            created_at=target + datetime.timedelta(minutes=10)
        )
    first = admin_client.get("/admin/").context["charts"]
    # A first view sums up only the newest 24 missing hours (the 24-hour card's).
    assert first["missing_hours"] == 7 * 24 - 24
    assert not ExecutionHour.objects.filter(hour=target).exists()
    response = admin_client.get("/admin/")  # the next view adds the next 24
    stored = ExecutionHour.objects.get(hour=target)
    assert (stored.executions, stored.tokens) == (3, 300)
    charts = response.context["charts"]["charts"]
    assert len(charts) == 3
    executions, tokens, failures = ({row[0]: row[1] for row in c.table[1:]} for c in charts)
    label = date_format(timezone.localtime(target), "SHORT_DATETIME_FORMAT")
    assert (executions[label], tokens[label], failures[label]) == ("3", "300", "1")
    assert "<svg" in response.content.decode()


# --- CSV for people and spreadsheets ----------------------------------------------------------


def _csv(response, delimiter=","):
    body = b"".join(response.streaming_content).decode("utf-8")
    return body, list(csv.reader(io.StringIO(body.removeprefix("\ufeff")), delimiter=delimiter))


def test_csv_headers_are_the_names_the_pages_show(admin_client):
    _user(keycloak_id="kc-1")
    _body, rows = _csv(admin_client.get("/admin/accounts/user/export.csv"))
    assert "Identity provider id" in rows[0] and "keycloak_id" not in rows[0]
    assert "Company" in rows[0] and "company_id" not in rows[0]


def test_session_csv_has_the_usage_columns_the_list_shows(admin_client):
    session = _session()
    for tokens, ms in ((1_000, 640), (2_500, 24_631)):
        ExecutionHistory.objects.create(
            session=session, prompt="p", tokens_used=tokens, execution_time_ms=ms
        )
    _session(user_id="idle")
    _body, rows = _csv(admin_client.get(f"{SESSIONS}export.csv", {"user_id": "user-1"}))
    header, [row] = rows[0], rows[1:]
    usage = {name: row[header.index(name)] for name in ("Executions", "Tokens", "Total time (ms)")}
    assert usage == {"Executions": "2", "Tokens": "3500", "Total time (ms)": "25271"}


def test_the_spreadsheet_dialect_uses_semicolons_and_a_byte_order_mark(admin_client):
    _session(user_id="José; Müller")
    response = admin_client.get(f"{SESSIONS}export.csv", {"dialect": "spreadsheet"})
    body, rows = _csv(response, delimiter=";")
    assert body.startswith("\ufeff")
    assert rows[0][:2] == ["Session id", "User id"]
    assert rows[1][1] == "José; Müller"  # quoted, survives the separator
    # Plain CSV stays as it was; an unknown dialect falls back to it; the dialect is
    # not taken for a filter of the list.
    plain, _rows = _csv(admin_client.get(f"{SESSIONS}export.csv", {"dialect": "bogus"}))
    assert not plain.startswith("\ufeff") and plain.split("\r\n")[0].count(",") > 2
    page = admin_client.get(SESSIONS, {"status": "completed"}).content.decode()
    assert "export.csv?status=completed&amp;dialect=spreadsheet" in page


# --- One vocabulary -----------------------------------------------------------------------------


def test_session_status_is_a_choice_not_free_text(admin_client):
    session = _session(status="completed")
    url = f"{SESSIONS}{session.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert '<select name="status"' in page
    response = admin_client.post(url, {"status": "complted"})  # a typo
    assert response.status_code == 200  # the form again, with its error
    session.refresh_from_db()
    assert session.status == "completed"
    assert admin_client.post(url, {"status": "failed"}).status_code == 302
    session.refresh_from_db()
    assert session.status == "failed"


def test_an_unknown_status_the_gateway_wrote_stays_choosable(admin_client):
    session = _session(status="paused_by_gateway")
    page = admin_client.get(f"{SESSIONS}{session.pk}/change/").content.decode()
    assert '<option value="paused_by_gateway" selected>' in page


def test_the_project_picker_names_the_company(admin_client):
    user = _user()
    for name in ("Acme", "Borealis"):
        company = Company.objects.create(name=name, domain=f"{name.lower()}.example")
        Project.objects.create(name="infra-terraform", company=company, owner=user)
    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "term": "infra",
            "app_label": "core",
            "model_name": "automation",
            "field_name": "project",
        },
    )
    labels = sorted(r["text"] for r in response.json()["results"])
    assert labels == ["infra-terraform (Acme)", "infra-terraform (Borealis)"]


def test_the_automation_list_names_each_project_with_its_company(
    admin_client, django_assert_max_num_queries
):
    user = _user()
    projects = []
    for company_name, project_name in (
        ("Borealis", "infra-terraform"),
        ("Acme", "infra-terraform"),
        ("Acme", "app"),
    ):
        company = Company.objects.get_or_create(
            name=company_name, defaults={"domain": f"{company_name.lower()}.example"}
        )[0]
        project = Project.objects.create(name=project_name, company=company, owner=user)
        projects.append(project)
        for i in range(3):
            Automation.objects.create(name=f"{project_name}-{i}", type="n8n", project=project)
    # The names come with the rows: no query per row. Sorted by the project column.
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/core/automation/", {"o": "3"})
    page = html.unescape(response.content.decode())
    cells = re.findall(r'<a href="/admin/core/project/([0-9a-f-]+)/change/">([^<]+)</a>', page)
    expected = {str(p.pk): f"{p.name} ({p.company.name})" for p in projects}
    assert collections.Counter(cells) == collections.Counter({item: 3 for item in expected.items()})
    assert [label for _pk, label in cells[:3]] == ["app (Acme)"] * 3


def test_the_audit_action_filter_speaks_one_vocabulary(admin_client):
    from audit.admin import ACTION_LABELS

    response = admin_client.get("/admin/audit/activitylog/")
    spec = next(s for s in response.context["cl"].filter_specs if s.parameter_name == "action")
    values = [value for value, _label in spec.lookup_choices]
    assert "change" in values and "diagnostics.cancel_backend" in values
    assert "update" not in values and "cancel_query" not in values
    assert values == list(ACTION_LABELS)


def test_the_session_pages_user_lookup_is_the_orm_condition_it_replaced(db):
    """core.story.portal_user_for (plain SQL) against the ORM's own answer to the same
    condition, for every way a caller id can (or cannot) name a user."""
    from django.db.models import Q

    from core.story import portal_user_for
    from portal.admin.changelist import uuid_prefix_q

    users = [
        _user("dana@example.com", keycloak_id="kc-1"),
        _user("Lee@Example.com", keycloak_id="KC-2"),
        _user("sam@example.com"),
    ]
    hexes = [u.pk.hex for u in users]
    callers = [
        "kc-1",
        "KC-2",
        "kc-2",
        "dana@example.com",
        "DANA@EXAMPLE.COM",
        "lee@example.com",
        "Lee@Example.com",
        str(users[2].pk),
        str(users[2].pk).upper(),
        users[2].pk.hex,
        *(f"usr_{h[:n]}" for h in hexes for n in (15, 16, 24, 31, 32)),
        "usr_ffffffffffffffffffff",
        "usr_0000000000000000",
        "usr_zzzzzzzzzzzzzzzz",
        "usr_",
        "x",
        "%",
        "' OR 1=1 --",
        "kc-1\\x00",
        "ü@example.com",
    ]

    def orm(user_id: str):
        condition = Q(keycloak_id=user_id) | Q(email=user_id.lower())
        if user_id.startswith("usr_"):
            prefix = uuid_prefix_q("pk", user_id[4:])
            if prefix is not None and len(user_id) - 4 >= 16:
                condition |= prefix
        uuid = parse_uuid(user_id)
        if uuid is not None:
            condition |= Q(pk=uuid)
        return User.objects.filter(condition).order_by("pk").first()

    for caller in callers:
        found, expected = portal_user_for(caller), orm(caller)
        assert (found and found.pk) == (expected and expected.pk), caller
        if found is not None:
            assert found.email == expected.email, caller
