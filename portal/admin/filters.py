"""List filters that an index serves: date ranges, indexed values, buckets."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_last_value_from_parameters
from django.contrib.admin.views.main import PAGE_VAR
from django.db import connections, models, router
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


def _parse_moment(value: str, *, end: bool = False) -> datetime.datetime:
    """A date (``2025-01-31``) or an ISO datetime from the query string, made aware."""
    value = value.strip()
    try:
        parsed = datetime.datetime.fromisoformat(value)
        if len(value) <= 10 and end:
            # "until 2025-01-31" includes that day.
            parsed += datetime.timedelta(days=1)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
    except (ValueError, OverflowError):
        raise IncorrectLookupParameters(f"not a date: {value[:40]!r}") from None
    return parsed


class DateRangeFilter(admin.FieldListFilter):
    """Quick ranges plus a from/until form, as ``<field>__gte`` / ``<field>__lt``.

    Every choice is a range on the field, which the field's index serves; unlike
    ``date_hierarchy`` nothing here lists the distinct dates of the table.
    """

    template = "admin/portal/filters/date_range.html"
    #: (label, days back, whole days?): "Past 7 days" is today and the six days before,
    #: as on the dashboard.
    quick_ranges = (
        (_("Past 24 hours"), 1, False),
        (_("Today"), 0, True),
        (_("Past 7 days"), 6, True),
    )

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_since = f"{field_path}__gte"
        self.lookup_until = f"{field_path}__lt"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.since = self._moment(self.lookup_since, end=False)
        self.until = self._moment(self.lookup_until, end=True)
        # Django 5 keeps each parameter's values as a list (typed object in the stubs).
        self.raw = {
            p: (cast(list[str], self.used_parameters[p])[-1] if p in self.used_parameters else "")
            for p in self.expected_parameters()
        }

    def _moment(self, name: str, *, end: bool) -> datetime.datetime | None:
        values = self.used_parameters.get(name)
        if not values:
            return None
        value = str(values[-1] if isinstance(values, list) else values)
        if not value.strip():
            # An empty "From" or "Until" box (a one-sided range): no bound on that side.
            return None
        return _parse_moment(value, end=end)

    def expected_parameters(self) -> list[str | None]:
        return [self.lookup_since, self.lookup_until]

    def queryset(self, request, queryset):
        q = models.Q()
        if self.since is not None:
            q &= models.Q(**{self.lookup_since: self.since})
        if self.until is not None:
            q &= models.Q(**{self.lookup_until: self.until})
        return queryset.filter(q)

    def choices(self, changelist):
        self.form = self.form_context(changelist)
        now = timezone.localtime()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        yield {
            "selected": self.since is None and self.until is None,
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": _("Any date"),
        }
        for label, days, whole_days in self.quick_ranges:
            since = (today if whole_days else now) - datetime.timedelta(days=days)
            since_text = since.date().isoformat() if whole_days else since.isoformat("T", "minutes")
            yield {
                "selected": self.raw[self.lookup_since] == since_text
                and not self.raw[self.lookup_until],
                "query_string": changelist.get_query_string(
                    {self.lookup_since: since_text}, [self.lookup_until, PAGE_VAR]
                ),
                "display": label,
            }

    def form_context(self, changelist) -> dict[str, Any]:
        keep = [
            (k, v)
            for k, values in changelist.filter_params.items()
            if k not in self.expected_parameters()
            for v in values
        ]
        return {
            "since_name": self.lookup_since,
            "until_name": self.lookup_until,
            "since": self._date_input(self.since, end=False),
            "until": self._date_input(self.until, end=True),
            "hidden": keep,
        }

    @staticmethod
    def _date_input(moment: datetime.datetime | None, *, end: bool) -> str:
        if moment is None:
            return ""
        local = timezone.localtime(moment)
        if end and local.time() == datetime.time(0):
            local -= datetime.timedelta(days=1)
        return local.date().isoformat()


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The distinct values of an indexed column, found by skipping through its index.

    ``SELECT DISTINCT status FROM t`` reads the whole table; a recursive query that asks
    the index for "the next value after this one" costs one index probe per value.
    The column must lead a B-tree index.
    """

    max_values = 100

    def __init__(self, field, request, params, model, model_admin, field_path):
        # AllValuesFieldListFilter.__init__ without its choices queryset: building it
        # runs the ModelAdmin's get_queryset (annotations and all) only to be replaced.
        self.lookup_kwarg = field_path
        self.lookup_kwarg_isnull = f"{field_path}__isnull"
        self.lookup_val = params.get(self.lookup_kwarg)
        self.lookup_val_isnull = get_last_value_from_parameters(params, self.lookup_kwarg_isnull)
        self.empty_value_display = model_admin.get_empty_value_display()
        # A list where Django builds a values_list() queryset: the filter only iterates it.
        self.lookup_choices = distinct_values(model, field, limit=self.max_values)  # type: ignore[assignment]
        admin.FieldListFilter.__init__(self, field, request, params, model, model_admin, field_path)


# Identifiers are the model's table and column, quoted by the backend (quote_name);
# the only value is a parameter.
DISTINCT_VALUES_SKIP_SCAN = """
WITH RECURSIVE walk(value, n) AS (
    (SELECT {column}, 1 FROM {table} WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1)
    UNION ALL
    SELECT (SELECT t.{column} FROM {table} t WHERE t.{column} > walk.value
            ORDER BY t.{column} LIMIT 1),
           walk.n + 1
    FROM walk
    WHERE walk.value IS NOT NULL AND walk.n < %(limit)s
)
SELECT value FROM walk WHERE value IS NOT NULL
"""


def distinct_values(model: type[models.Model], field: models.Field, *, limit: int) -> list[Any]:
    """Up to ``limit`` distinct values of ``field``, one index probe each."""
    # Only for concrete fields (leading a B-tree index), which have a column.
    assert field.column is not None
    connection = connections[router.db_for_read(model)]
    query = DISTINCT_VALUES_SKIP_SCAN.format(
        table=connection.ops.quote_name(model._meta.db_table),
        column=connection.ops.quote_name(field.column),
    )
    with connection.cursor() as cursor:
        cursor.execute(query, {"limit": limit})
        return [row[0] for row in cursor.fetchall()]


class ChoicesFilter(admin.SimpleListFilter):
    """A SimpleListFilter whose value must be one of its lookups (else: invalid params)."""

    def clean_value(self) -> str | None:
        value = self.value()
        if value is not None and value not in {str(k) for k, _ in self.lookup_choices}:
            raise IncorrectLookupParameters(f"unknown {self.parameter_name}: {value[:40]!r}")
        return value


class BucketFilter(ChoicesFilter):
    """Filter by a bucket expression that an expression index covers.

    ``buckets`` is ``[(key, label), ...]``; ``expression()`` returns the same Django
    expression the index was built from, so PostgreSQL matches the index.
    """

    buckets: Sequence[tuple[int, str | Promise]] = []  # labels may be lazy translations

    def expression(self):  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [(str(key), label) for key, label in self.buckets]

    def queryset(self, request, queryset):
        value = self.clean_value()
        if value is None:
            return queryset
        name = f"_{self.parameter_name}_bucket"
        return queryset.alias(**{name: self.expression()}).filter(**{name: int(value)})
