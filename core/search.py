"""Expressions shared by the execution-history indexes and the admin's queries.

PostgreSQL uses an expression index only for a query that contains the same
expression, so the model's ``Meta.indexes`` and the admin build them from these
functions (the tests check the plans use the indexes).
"""

from collections.abc import Sequence

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Left
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

StrOrPromise = str | Promise

#: Full-text search covers this many leading characters of the prompt and of the
#: response: a tsvector is limited to 1 MB, and an index expression that failed on a
#: huge response would make the gateway's INSERT fail.
SEARCH_PREFIX_CHARS = 50_000
SEARCH_CONFIG = "english"

#: (bucket, label, lower bound inclusive, upper bound exclusive); bucket 0 = not recorded.
TOKEN_BUCKETS = [
    (1, _("under 1,000"), None, 1_000),
    (2, _("1,000 to 4,000"), 1_000, 4_000),
    (3, _("4,000 to 16,000"), 4_000, 16_000),
    (4, _("16,000 to 64,000"), 16_000, 64_000),
    (5, _("64,000 and more"), 64_000, None),
]
TIME_BUCKETS = [
    (1, _("under 1 s"), None, 1_000),
    (2, _("1 to 5 s"), 1_000, 5_000),
    (3, _("5 to 30 s"), 5_000, 30_000),
    (4, _("30 s to 2 min"), 30_000, 120_000),
    (5, _("2 min and more"), 120_000, None),
]
NOT_RECORDED = 0


def search_vector() -> SearchVector:
    return SearchVector(
        Left("prompt", SEARCH_PREFIX_CHARS),
        Left("response", SEARCH_PREFIX_CHARS),
        config=SEARCH_CONFIG,
    )


def search_query(text: str) -> SearchQuery:
    """Web-search syntax: words, "quoted phrases", -excluded, or."""
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


def _bucket(
    field: str, buckets: Sequence[tuple[int, StrOrPromise, int | None, int | None]]
) -> Case:
    whens = [When(Q(**{f"{field}__isnull": True}), then=Value(NOT_RECORDED))]
    for bucket, _label, _low, high in buckets[:-1]:
        whens.append(When(Q(**{f"{field}__lt": high}), then=Value(bucket)))
    return Case(*whens, default=Value(buckets[-1][0]), output_field=IntegerField())


def token_bucket() -> Case:
    return _bucket("tokens_used", TOKEN_BUCKETS)


def time_bucket() -> Case:
    return _bucket("execution_time_ms", TIME_BUCKETS)
