"""No N+1 queries: every registered model's list and detail pages run a fixed number of
queries however many rows there are (counted with CaptureQueriesContext)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import CodexSession, ExecutionHistory

from .support import admin_url, make_rows, model_id, registered_models

pytestmark = pytest.mark.django_db

#: A list page: session + user, the estimate, a bounded count, the page, and a few
#: cheap lookups (filters' choices). Anything that grows with the rows fails.
MAX_LIST_QUERIES = 15
MAX_DETAIL_QUERIES = 15


def _queries(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(captured), [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_each_list_runs_the_same_queries_for_few_and_many_rows(admin_client, model):
    url = admin_url(model, "changelist")
    make_rows(model, 3)
    few, _ = _queries(admin_client, url)
    make_rows(model, 40)
    many, sql = _queries(admin_client, url)
    assert many == few, "\n".join(sql)
    assert many <= MAX_LIST_QUERIES, "\n".join(sql)


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_each_detail_page_runs_a_bounded_number_of_queries(admin_client, model):
    (obj,) = make_rows(model, 1)
    make_rows(model, 40)
    count, sql = _queries(admin_client, admin_url(model, "change", obj.pk))
    assert count <= MAX_DETAIL_QUERIES, "\n".join(sql)


@pytest.mark.parametrize("model", registered_models(), ids=model_id)
def test_no_list_counts_the_whole_table(admin_client, model):
    make_rows(model, 5)
    _, sql = _queries(admin_client, admin_url(model, "changelist"))
    unbounded_counts = [
        q for q in sql if q.upper().startswith("SELECT COUNT(") and "LIMIT" not in q.upper()
    ]
    assert unbounded_counts == []


def test_session_page_queries_do_not_grow_with_its_executions(admin_client):
    small, big = make_rows(CodexSession, 2)
    make_rows_for = ExecutionHistory.objects.bulk_create
    make_rows_for([ExecutionHistory(session=small, prompt="p") for _ in range(2)])
    make_rows_for([ExecutionHistory(session=big, prompt="p") for _ in range(300)])
    bigger = make_rows(CodexSession, 1)[0]
    make_rows_for([ExecutionHistory(session=bigger, prompt="p") for _ in range(3000)])
    few, _ = _queries(admin_client, admin_url(CodexSession, "change", small.pk))
    many, sql = _queries(admin_client, admin_url(CodexSession, "change", big.pk))
    more, _ = _queries(admin_client, admin_url(CodexSession, "change", bigger.pk))
    # A timeline that holds every execution gives the totals itself; past its length one
    # more query sums them, whatever their number.
    assert many == more == few + 1, "\n".join(sql)
