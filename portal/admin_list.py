"""Changelists that stay fast and safe on tables of tens of millions of rows.

:class:`LargeTableAdminMixin` is mixed into the portal's base ModelAdmin: estimated
counts instead of ``COUNT(*)``, no facet counts, a cap on how deep pagination goes on
estimated lists (an ``OFFSET`` of millions reads millions of rows), a streaming CSV
export of the current filtered list, 404 pages for unknown or malformed ids, and bad
query strings answered with a message instead of a server error.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_last_value_from_parameters, unquote
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import DataError, OperationalError, connections, models, router, transaction
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property

from portal.estimates import RowCount, count_rows, humanize

#: Estimated lists paginate this deep at most; older rows are reached by filtering or by
#: reversing the order (both index-backed), never by an OFFSET of millions.
MAX_ESTIMATED_PAGES = 200


class EstimatedCountPaginator(Paginator):
    """Counts with :func:`portal.estimates.count_rows`: exact when cheap, estimated else."""

    row_count: RowCount | None = None

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return super().count
        self.row_count = count_rows(self.object_list)
        return self.row_count.value

    @cached_property
    def num_pages(self) -> int:
        pages = super().num_pages
        if self.row_count is not None and not self.row_count.is_exact:
            return min(pages, MAX_ESTIMATED_PAGES)
        return pages

    @property
    def is_capped(self) -> bool:
        return (
            self.row_count is not None
            and not self.row_count.is_exact
            and (self.count > self.per_page * MAX_ESTIMATED_PAGES)
        )


#: Lookups from the query string that no list filter consumed are allowed only as plain
#: comparisons on a column of the model (an address such as ``?resource_id=42`` from a
#: link). Transforms (``__year``), pattern matches (``__icontains``, ``__regex``) and
#: joins are refused: they scan the table or fail inside PostgreSQL.
SAFE_LOOKUPS = {"exact", "in", "isnull", "gt", "gte", "lt", "lte"}


class PortalChangeList(ChangeList):
    """A ChangeList that knows whether its count is exact and says so, and accepts only
    cheap, well-formed filters from the query string."""

    def get_filters(self, request: HttpRequest):
        result = super().get_filters(request)
        for key in result[2]:
            name, *lookups = key.split("__")
            try:
                field = self.lookup_opts.get_field(name)
            except FieldDoesNotExist:
                raise IncorrectLookupParameters(f"unknown field: {name[:40]!r}") from None
            concrete = getattr(field, "concrete", False) and not field.many_to_many
            if not concrete or len(lookups) > 1 or (lookups and lookups[0] not in SAFE_LOOKUPS):
                raise IncorrectLookupParameters(f"unsupported filter: {key[:60]!r}")
        return result

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page is fetched here, not while the template renders: errors and time
        # limits surface in the view, and the template reuses the fetched rows.
        page_rows = self.fetch_page()
        row_count = getattr(self.paginator, "row_count", None)
        if row_count is None or row_count.is_exact:
            return
        # An estimate can be far off for a narrow filter. When this page is not full,
        # the rows seen so far are the real count: use it.
        if page_rows < self.list_per_page and (page_rows or self.page_num == 1):
            exact = (self.page_num - 1) * self.list_per_page + page_rows
            row_count = RowCount(exact, "exact")
            self.paginator.row_count = row_count
            self.paginator.count = exact
            self.paginator.__dict__.pop("num_pages", None)
            self.result_count = exact
            self.multi_page = exact > self.list_per_page
            self.can_show_all = exact <= self.list_max_show_all

    def fetch_page(self) -> int:
        return len(self.result_list)

    @property
    def row_count(self) -> RowCount:
        found = getattr(self.paginator, "row_count", None)
        return found if found is not None else RowCount(self.result_count, "exact")

    @property
    def count_display(self) -> str:
        return humanize(self.row_count)

    @property
    def count_is_estimate(self) -> bool:
        return not self.row_count.is_exact

    @property
    def pages_capped(self) -> bool:
        return getattr(self.paginator, "is_capped", False)


def is_changelist_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for a list page: the one place a ModelAdmin's queryset may
    leave out the wide columns (whole texts, JSON) that only the change page shows."""
    match = request.resolver_match
    return match is not None and bool(match.url_name) and match.url_name.endswith("_changelist")


def set_local(name: str, value: str, using: str = "default") -> None:
    """``SET LOCAL`` a setting for the rest of the current transaction."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%(name)s, %(value)s, true)", {"name": name, "value": value}
        )


def is_query_canceled(exc: BaseException) -> bool:
    """A statement stopped by ``statement_timeout`` (SQLSTATE 57014)."""
    return getattr(exc.__cause__, "sqlstate", None) == "57014"


class PrettyJSONFormField(forms.JSONField):
    """JSON edited as indented text; anything PostgreSQL's jsonb would reject is a form error.

    Python's json module accepts ``NaN``/``Infinity``, ``\\u0000`` and lone surrogates,
    all of which PostgreSQL refuses (a DataError, i.e. a server error, at save time).
    """

    default_error_messages = {
        "invalid": "Enter valid JSON (check quotes, commas and brackets).",
        "unsupported": "%(reason)s",
    }

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, list | dict | int | float | bool):
            return value
        try:
            converted = json.loads(value, cls=self.decoder, parse_constant=_reject_constant)
        except (json.JSONDecodeError, ValueError):
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None
        self._check_storable(converted)
        return converted

    def _check_storable(self, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False, cls=self.encoder)
        if "\\u0000" in text:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={"reason": "JSON text may not contain the NUL character (\\u0000)."},
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={"reason": "JSON text contains an invalid unicode escape."},
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Redisplay refused input as typed: re-encoding it (NUL, a lone surrogate)
        # would fail while rendering the error page.
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return self.to_python(data)
        except ValidationError:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class JSONTextarea(forms.Textarea):
    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(
            {
                "class": "vLargeTextField portal-json",
                "rows": 12,
                "spellcheck": "false",
                **(attrs or {}),
            }
        )


class _Echo:
    """A file-like object whose write returns the line: csv.writer into a generator."""

    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A spreadsheet would run "=..." as a formula (CSV injection).
        return "'" + value
    return value


def stream_csv(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_csv_cell(v) for v in row])


class LargeTableAdminMixin:
    """List defaults for large tables and the safety net for hostile input."""

    list_per_page = 50
    list_max_show_all = 200
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    #: Longer search strings return nothing with a message (they cannot be meant).
    max_search_length = 200
    #: Never exported: secrets and password hashes.
    csv_exclude_fields: tuple[str, ...] = ("password",)
    csv_chunk_size = 2000
    #: No list page may keep the database busy longer than this (a safety net: the
    #: lists are built to answer in milliseconds).
    list_statement_timeout = "15s"
    formfield_overrides = {
        models.JSONField: {"form_class": PrettyJSONFormField, "widget": JSONTextarea},
    }

    @property
    def change_list_template(self) -> list[str]:
        opts = self.opts
        return [
            f"admin/{opts.app_label}/{opts.model_name}/change_list.html",
            f"admin/{opts.app_label}/change_list.html",
            "admin/portal/change_list.html",
        ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PortalChangeList

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        # A regex from the query string is compiled by PostgreSQL and fails there.
        if lookup.rsplit("__", 1)[-1] in {"regex", "iregex"}:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        search_term = search_term.replace("\x00", "").strip()
        if len(search_term) > self.max_search_length:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        term = request.GET.get("q", "")
        if len(term) > self.max_search_length:
            messages.warning(
                request,
                f"Search terms are limited to {self.max_search_length} characters; "
                f"yours had {len(term):,}.",
            )
        if ERROR_FLAG in request.GET:
            messages.warning(
                request, "Some filter or sort values in the address were not valid and were reset."
            )
        extra_context = {**(extra_context or {}), **self._list_context(request)}
        try:
            # A savepoint: a query that PostgreSQL rejects must not poison an outer
            # transaction. The response is rendered here so such errors surface here.
            with transaction.atomic(using=self._db(request)):
                set_local("statement_timeout", self.list_statement_timeout, self._db(request))
                response = super().changelist_view(request, extra_context)
                if isinstance(response, SimpleTemplateResponse):
                    response.render()
        except (DataError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and not is_query_canceled(exc):
                raise
            if is_query_canceled(exc):
                messages.warning(
                    request,
                    f"The list took longer than {self.list_statement_timeout} to compute "
                    "and was stopped. Narrow it with a filter or a more specific search.",
                )
            if ERROR_FLAG in request.GET:
                return SimpleTemplateResponse(
                    "admin/invalid_setup.html", {"title": "Invalid list parameters"}, status=400
                )
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return response

    def _db(self, request: HttpRequest) -> str:
        return router.db_for_read(self.model)

    def _list_context(self, request: HttpRequest) -> dict[str, Any]:
        if not self.csv_export_enabled(request):
            return {}
        params = request.GET.copy()
        for name in (PAGE_VAR, ERROR_FLAG):
            params.pop(name, None)
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_export_csv",
            current_app=self.admin_site.name,
        )
        return {"export_csv_url": f"{url}?{params.urlencode()}" if params else url}

    # --- CSV export --------------------------------------------------------------

    def csv_export_enabled(self, request: HttpRequest) -> bool:
        return self.has_view_or_change_permission(request)

    def get_csv_fields(self, request: HttpRequest) -> list[models.Field]:
        # Generated columns (a stored search document) are derived by PostgreSQL.
        return [
            f
            for f in self.opts.concrete_fields
            if not f.generated
            and f.name not in self.csv_exclude_fields
            and f.attname not in self.csv_exclude_fields
        ]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_csv_view),
                name="{}_{}_export_csv".format(*info),
            ),
            *super().get_urls(),
        ]

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The current filtered, searched and ordered list as CSV, streamed.

        Rows come through a server-side cursor in chunks (``QuerySet.iterator``), so
        memory stays flat however many rows match.
        """
        if not self.csv_export_enabled(request):
            raise PermissionDenied
        changelist_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
            current_app=self.admin_site.name,
        )
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        fields = self.get_csv_fields(request)
        rows = cl.queryset.values_list(*[f.attname for f in fields]).iterator(
            chunk_size=self.csv_chunk_size
        )
        response = StreamingHttpResponse(
            stream_csv([f.attname for f in fields], rows), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        )
        return response

    # --- Unknown objects are a 404, not a redirect to the index --------------------

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with a message; an unknown or malformed id in
        # an address is a "not found", and says which id.
        context = {
            **self.admin_site.each_context(request),
            "title": f"No such {opts.verbose_name}",
            "opts": opts,
            "object_id": unquote(object_id),
            "changelist_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist",
                current_app=self.admin_site.name,
            ),
        }
        return TemplateResponse(request, "admin/portal/not_found.html", context, status=404)


# --- List filters ----------------------------------------------------------------


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
    quick_ranges = (("Past 24 hours", 1, False), ("Today", 0, True), ("Past 7 days", 6, True))

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_since = f"{field_path}__gte"
        self.lookup_until = f"{field_path}__lt"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.since = self._moment(self.lookup_since, end=False)
        self.until = self._moment(self.lookup_until, end=True)
        self.raw = {
            p: (self.used_parameters[p][-1] if p in self.used_parameters else "")
            for p in self.expected_parameters()
        }

    def _moment(self, name: str, *, end: bool) -> datetime.datetime | None:
        values = self.used_parameters.get(name)
        if not values:
            return None
        value = values[-1] if isinstance(values, list) else values
        return _parse_moment(str(value), end=end)

    def expected_parameters(self) -> list[str]:
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
            "display": "Any date",
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
        self.lookup_choices = distinct_values(model, field, limit=self.max_values)
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

    buckets: list[tuple[int, str]] = []

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


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        return None
