"""Lists at scale: estimated counts, index-backed search and filters, streaming CSV."""

import csv
import io
import json
import re
import tracemalloc
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from core.models import CodexSession, ExecutionHistory, SandboxExecution
from tests.db import roles

pytestmark = pytest.mark.django_db

EXECUTIONS = "/admin/core/executionhistory/"


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _bulk_executions(session_id, rows: int, *, prompt_bytes: int = 40) -> None:
    """Rows made by PostgreSQL itself (fast), with a word that is rare: 'zanzibar'."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO core.execution_history
                (session_id, prompt, response, tokens_used, execution_time_ms, created_at)
            SELECT %(session)s,
                   'refactor module ' || g || ' ' || repeat('x', %(pad)s),
                   CASE WHEN g %% 5000 = 0 THEN 'visit zanzibar' ELSE 'done ' || g END,
                   500 + g %% 3000,
                   100 + g %% 900,
                   now() - g * interval '1 second'
            FROM generate_series(1, %(rows)s) g
            """,
            {"session": session_id, "rows": rows, "pad": prompt_bytes},
        )
    roles.analyze("core.execution_history")


@pytest.fixture
def session():
    return CodexSession.objects.create(
        session_id=uuid.uuid4(),
        user_id="user-7",
        model="gpt-5",
        status="completed",
        metadata={"repo": "acme/api", "labels": ["ci", "flaky"]},
    )


# --- Counting -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_a_large_list_shows_an_estimate_and_never_counts_every_row(admin_client, session):
    _bulk_executions(session.pk, 12_000)
    with CaptureQueriesContext(connection) as queries:
        page = _text(admin_client.get(EXECUTIONS))
    assert re.search(r"about 1[12],\d00 execution history", page), page[-3000:]
    counts = [q["sql"] for q in queries if q["sql"].upper().startswith("SELECT COUNT(")]
    assert all("LIMIT" in q.upper() for q in counts)


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_a_narrow_filter_shows_the_exact_count(admin_client, session):
    _bulk_executions(session.pk, 12_000)
    other = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u2", model="o3", status="failed"
    )
    ExecutionHistory.objects.bulk_create(
        [ExecutionHistory(session=other, prompt=f"p{i}") for i in range(3)]
    )
    page = _text(admin_client.get(f"{EXECUTIONS}?session={other.pk}"))
    assert "3 execution history" in page
    assert "about" not in page.split('class="paginator"')[1]


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_pagination_of_an_estimated_list_stops_at_a_cheap_depth(admin_client, session):
    _bulk_executions(session.pk, 12_000)
    assert admin_client.get(f"{EXECUTIONS}?p=200").status_code == 200
    response = admin_client.get(f"{EXECUTIONS}?p=201")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    page = _text(admin_client.get(f"{EXECUTIONS}?p=1"))
    assert "the first 200 pages are listed" in page


# --- Search ---------------------------------------------------------------------------


def test_search_finds_words_in_prompt_and_response(admin_client, session):
    ExecutionHistory.objects.bulk_create(
        [
            ExecutionHistory(session=session, prompt="Fix the failing migration", response="ok"),
            ExecutionHistory(session=session, prompt="hello", response="The migrations ran"),
            ExecutionHistory(session=session, prompt="unrelated", response="nothing"),
        ]
    )
    page = _text(admin_client.get(f"{EXECUTIONS}?q=migration"))
    assert "Fix the failing migration" in page and "hello" in page
    assert "unrelated" not in page
    page = _text(admin_client.get(f'{EXECUTIONS}?q="failing migration"'))
    assert "Fix the failing migration" in page and "hello" not in page
    page = _text(admin_client.get(f"{EXECUTIONS}?q=migration -failing"))
    assert "hello" in page and "Fix the failing" not in page


def test_search_by_session_id_or_execution_number(admin_client, session):
    mine = ExecutionHistory.objects.create(session=session, prompt="mine")
    other = CodexSession.objects.create(session_id=uuid.uuid4(), user_id="x", model="m", status="s")
    ExecutionHistory.objects.create(session=other, prompt="theirs")
    page = _text(admin_client.get(f"{EXECUTIONS}?q={session.pk}"))
    assert "mine" in page and "theirs" not in page
    page = _text(admin_client.get(f"{EXECUTIONS}?q={mine.pk}"))
    assert "mine" in page and "theirs" not in page


def _changelist_queryset(rf, admin_user, model, query: str):
    from django.contrib import admin

    model_admin = admin.site._registry[model]
    request = rf.get(f"/admin/?{query}")
    request.user = admin_user
    return model_admin.get_changelist_instance(request).queryset


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_execution_search_uses_the_full_text_index(rf, admin_user, session):
    _bulk_executions(session.pk, 20_000)
    queryset = _changelist_queryset(rf, admin_user, ExecutionHistory, "q=zanzibar")
    # What matters is that the admin's condition is one the GIN index can answer. On
    # 20,000 rows reading them all is cheaper (the stored document makes each test
    # cheap), and walking the created_at index until 50 rows match is too (the planner
    # cannot know 'zanzibar' is rare): both are ruled out to ask for the GIN path (a
    # bitmap scan).
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
        plan = queryset[:50].explain()
    assert "exec_history_document_idx" in plan, plan
    assert len(list(queryset[:50])) == 4


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_token_and_time_bucket_filters_use_their_indexes(rf, admin_user, session):
    _bulk_executions(session.pk, 20_000)
    ExecutionHistory.objects.create(
        session=session, prompt="huge", tokens_used=100_000, execution_time_ms=500_000
    )
    roles.analyze("core.execution_history")
    for query, index in (
        ("tokens=5", "exec_history_tokens_idx"),
        ("time=5", "exec_history_time_idx"),
    ):
        queryset = _changelist_queryset(rf, admin_user, ExecutionHistory, query)
        plan = queryset[:50].explain()
        assert index in plan, plan
        assert [e.prompt for e in queryset[:50]] == ["huge"]


def test_session_status_choices_come_from_the_index(admin_client):
    for status in ("completed", "failed", "running"):
        CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m", status=status)
    page = _text(admin_client.get("/admin/core/codexsession/"))
    for status in ("completed", "failed", "running"):
        assert f"?status={status}" in page


# --- Sessions -------------------------------------------------------------------------


def test_session_list_shows_usage_and_finds_by_user_or_session_id(admin_client, session):
    ExecutionHistory.objects.bulk_create(
        [
            ExecutionHistory(session=session, prompt="a", tokens_used=1200, execution_time_ms=1500),
            ExecutionHistory(session=session, prompt="b", tokens_used=800, execution_time_ms=500),
        ]
    )
    CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="someone-else", model="m", status="s"
    )
    page = _text(admin_client.get("/admin/core/codexsession/?q=user-7"))
    assert "user-7" in page and "someone-else" not in page
    assert "2,000" in page and "2.0 s" in page
    assert f"?session={session.pk}" in page
    page = _text(admin_client.get(f"/admin/core/codexsession/?q={session.pk}"))
    assert "user-7" in page and "someone-else" not in page


def test_session_page_shows_pretty_metadata_and_a_bounded_list_of_executions(admin_client, session):
    ExecutionHistory.objects.bulk_create(
        [ExecutionHistory(session=session, prompt=f"step {i}") for i in range(35)]
    )
    response = admin_client.get(f"/admin/core/codexsession/{session.pk}/change/")
    page = response.content.decode()
    assert "&quot;repo&quot;: &quot;acme/api&quot;" in page
    assert "\n  &quot;labels&quot;: [\n" in page
    rows = re.findall(r'href="/admin/core/executionhistory/\d+/change/"', page)
    assert len(rows) == 35  # the timeline, oldest first, up to 100
    assert response.context["story"]["steps"][0].execution.prompt_head == "step 0"
    assert f"/admin/core/executionhistory/?session={session.pk}" in page


def test_session_status_can_be_changed_but_sessions_are_not_deleted(admin_client, session):
    url = f"/admin/core/codexsession/{session.pk}/change/"
    response = admin_client.post(url, {"status": "cancelled"})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert admin_client.get(f"/admin/core/codexsession/{session.pk}/delete/").status_code == 403


# --- Detail pages ---------------------------------------------------------------------


def test_execution_page_shows_the_full_prompt_and_response_readably(admin_client, session):
    long_tail = "tail-" * 3000
    execution = ExecutionHistory.objects.create(
        session=session,
        prompt="Why does this fail?\n\n```python\ndef f(x):\n    return x < 1\n```\n" + long_tail,
        response="Use `x <= 1`.",
    )
    page = admin_client.get(f"/admin/core/executionhistory/{execution.pk}/change/").content.decode()
    assert "<code>def f(x):\n    return x &lt; 1</code>" in page
    assert long_tail in page
    assert "<code>x &lt;= 1</code>" in page
    assert f"/admin/core/executionhistory/?session={session.pk}" in page


def test_execution_history_is_read_only(admin_client, session):
    execution = ExecutionHistory.objects.create(session=session, prompt="p")
    url = f"/admin/core/executionhistory/{execution.pk}/change/"
    admin_client.post(url, {"prompt": "changed"})
    execution.refresh_from_db()
    assert execution.prompt == "p"
    assert admin_client.get("/admin/core/executionhistory/add/").status_code == 403


def test_sandbox_run_shows_formatted_sql_and_the_error_filter(admin_client, session):
    failed = SandboxExecution.objects.create(
        session=session, sql_query="select a, b from t where a = 1 order by b", error="boom"
    )
    SandboxExecution.objects.create(session=session, sql_query="select 2", result={"rows": [[2]]})
    page = admin_client.get(f"/admin/core/sandboxexecution/{failed.pk}/change/").content.decode()
    # Broken into lines, case left as it ran.
    assert "select a,\n       b\nfrom t\nwhere a = 1\norder by b" in page
    listing = _text(admin_client.get("/admin/core/sandboxexecution/?outcome=failed"))
    assert "select a, b" in listing and "select 2" not in listing
    listing = _text(admin_client.get("/admin/core/sandboxexecution/?outcome=succeeded"))
    assert "select 2" in listing and "select a, b" not in listing


# --- CSV export -----------------------------------------------------------------------


def test_csv_export_streams_the_current_filtered_list(admin_client, session):
    ExecutionHistory.objects.bulk_create(
        [
            ExecutionHistory(session=session, prompt='=HYPERLINK("x")', tokens_used=10),
            ExecutionHistory(session=session, prompt="plain", tokens_used=20_000),
        ]
    )
    response = admin_client.get(f"{EXECUTIONS}export.csv?tokens=1")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    content = response.streaming_content
    assert isinstance(content, Iterator)
    rows = list(csv.reader(io.StringIO(b"".join(content).decode())))
    # Headed as the pages name the columns (verbose names).
    assert rows[0][:3] == ["ID", "Session", "Prompt"]
    assert [r[2] for r in rows[1:]] == ['\'=HYPERLINK("x")']
    # The stored search document is PostgreSQL's, not data anyone exports.
    assert "Search document" not in rows[0] and "Created at" in rows[0]


def test_the_list_links_to_the_csv_of_what_it_shows(admin_client, session):
    page = admin_client.get(f"{EXECUTIONS}?tokens=1&q=plain").content.decode()
    assert f"{EXECUTIONS}export.csv?tokens=1&amp;q=plain" in page


def test_user_csv_export_never_contains_password_hashes(admin_client, admin_user):
    body = b"".join(admin_client.get("/admin/accounts/user/export.csv").streaming_content)
    header = body.decode().splitlines()[0]
    assert "password" not in header
    assert admin_user.password.encode() not in body


def _export_peak(client) -> tuple[int, int]:
    response = client.get(f"{EXECUTIONS}export.csv")
    total = 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, peak


def test_csv_export_memory_stays_flat_however_many_rows(admin_client, session):
    _bulk_executions(session.pk, 4_000, prompt_bytes=1000)
    small_total, small_peak = _export_peak(admin_client)
    _bulk_executions(session.pk, 16_000, prompt_bytes=1000)
    big_total, big_peak = _export_peak(admin_client)
    assert big_total > 4 * small_total
    # Rows go through a server-side cursor in fixed chunks: five times the rows, about
    # the same memory (a list() of the queryset would need five times as much).
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)


def test_json_values_export_as_json(admin_client, session):
    response = admin_client.get("/admin/core/codexsession/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert json.loads(rows[0]["Metadata"]) == {"repo": "acme/api", "labels": ["ci", "flaky"]}
