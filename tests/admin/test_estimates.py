"""Row counts: exact when cheap, the planner's estimate with honest wording otherwise."""

import pytest
from django.db import connection

from core.models import McpCache
from portal.admin.estimates import RowCount, count_rows, humanize
from tests.db import roles

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (RowCount(0), "0"),
        (RowCount(1234), "1,234"),
        (RowCount(10_001, "at_least"), "more than 10,000"),
        (RowCount(12_345, "estimate"), "about 12,000"),
        (RowCount(987_654, "estimate"), "about 990,000"),
        (RowCount(10_234_567, "estimate"), "about 10.2 million"),
        (RowCount(3_100_000_000, "estimate"), "about 3.1 billion"),
    ],
)
def test_counts_are_worded_honestly(count, text):
    assert humanize(count) == text


def _fill_cache(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core.mcp_cache (tool_name, arguments, expires_at) "
            "SELECT 'tool-' || (g %% 3), '{}', now() - interval '1 day' "
            "FROM generate_series(1, %(rows)s) g",
            {"rows": rows},
        )
    roles.analyze("core.mcp_cache")


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_small_results_are_counted_exactly():
    _fill_cache(500)
    assert count_rows(McpCache.objects.filter(tool_name="tool-1")) == RowCount(167, "exact")


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_large_results_are_estimated_without_counting():
    _fill_cache(30_000)
    count = count_rows(McpCache.objects.all())
    assert count.kind == "estimate" and 25_000 < count.value < 35_000


@pytest.mark.django_db(transaction=True)  # committed rows: ANALYZE runs as their owner
def test_a_wrong_low_estimate_cannot_turn_into_a_full_count():
    _fill_cache(3_000)
    # Rows the statistics have not seen yet: the planner expects almost none.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core.mcp_cache (tool_name, arguments) "
            "SELECT 'fresh', '{}' FROM generate_series(1, 12000)"
        )
    count = count_rows(McpCache.objects.filter(tool_name="fresh"))
    assert count == RowCount(10_001, "at_least")
    assert humanize(count) == "more than 10,000"


def test_an_empty_queryset_counts_zero_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert count_rows(McpCache.objects.none()) == RowCount(0, "exact")
