"""CSV export of the current filtered, searched and ordered list, streamed.

How rows are fetched (:func:`keyset_rows`): one short query per chunk of the list's own
order, each continuing after the last row of the one before (``WHERE (key) > (last
key) ... LIMIT n``). No server-side cursor: a cursor ``WITH HOLD`` makes PostgreSQL
write the whole result to a temporary file before the first row, and one without HOLD
needs a transaction open for the whole download (holding back vacuum and concurrent
index builds). Each chunk is its own statement in autocommit, under the request's
statement timeout; when the client goes away, the server stops iterating and no further
chunk is asked for.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib.admin.options import IncorrectLookupParameters, ModelAdmin
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.formats import get_format
from django.utils.functional import Promise
from django.utils.text import capfirst

from audit.services import record_export
from portal.admin.validation import invalid_lookups


class _Echo:
    """A file-like object whose write returns the line: csv.writer into a generator."""

    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any, decimal_separator: str = ".") -> Any:
    if value is None:
        return ""
    if isinstance(value, float | decimal.Decimal) and decimal_separator != ".":
        return str(value).replace(".", decimal_separator)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A spreadsheet would run "=..." as a formula (CSV injection).
        return "'" + value
    return value


#: ``?dialect=`` of the export: the standard comma-separated file, or one a spreadsheet
#: in a comma-decimal locale (Excel, LibreOffice in de/fr/pt-BR...) opens in columns:
#: ``;`` between cells, a UTF-8 byte order mark so accents survive, and decimal numbers
#: written with the reader's language's separator (``1,5`` in pt-BR), which such a
#: spreadsheet reads as a number rather than as text or a date.
DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {"delimiter": ",", "bom": False, "local_decimals": False},
    "spreadsheet": {"delimiter": ";", "bom": True, "local_decimals": True},
}
DIALECT_PARAM = "dialect"


@dataclass(frozen=True)
class CsvColumn:
    """One exported column: its header, the queryset value it reads, and how a value of
    that source becomes the cell (default: as it is)."""

    label: str | Promise  # a lazy label is rendered in the export's language
    source: str
    cell: Callable[[Any], Any] | None = None


def stream_csv(
    header: list[str | Promise], rows: Iterable[Iterable[Any]], *, dialect: str = "csv"
) -> Iterator[str]:
    options = DIALECTS[dialect]
    writer = csv.writer(_Echo(), delimiter=options["delimiter"])
    first = writer.writerow([str(label) for label in header])
    yield ("\ufeff" + first) if options["bom"] else first
    separator = str(get_format("DECIMAL_SEPARATOR")) if options["local_decimals"] else "."
    for row in rows:
        yield writer.writerow([_csv_cell(v, separator) for v in row])


if TYPE_CHECKING:
    # The mixins are only ever combined with ModelAdmin (portal.admin.base); for the
    # type checker they are ModelAdmins, so super() and self.opts etc. resolve.
    _ModelAdminBase = ModelAdmin[Any]
else:
    _ModelAdminBase = object


class _CountedRows:
    """Counts the rows read from ``rows`` and whether it was read to the end."""

    def __init__(self, rows: Iterable[Iterable[Any]]) -> None:
        self.rows = rows
        self.count = 0
        self.finished = False
        self.error = ""

    def __iter__(self) -> Iterator[Iterable[Any]]:
        try:
            for row in self.rows:
                self.count += 1  # rows handed to the response
                yield row
        except Exception as exc:
            self.error = type(exc).__name__
            raise
        self.finished = True


def in_language(lines: Iterator[str], language: str | None) -> Iterator[str]:
    """``lines``, each produced with ``language`` active.

    A streaming response is iterated after the view has returned (by the server, maybe
    in another thread), so the request's language is no longer guaranteed to be the
    active one: the headers (lazy verbose names) and anything the rows translate are
    rendered under it here, one line at a time, leaving the thread's language as it
    was between lines. Closing this generator closes ``lines``.
    """
    try:
        while True:
            with translation.override(language):
                try:
                    line = next(lines)
                except StopIteration:
                    return
            yield line
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            with translation.override(language):
                close()


def audited_stream(
    lines: Iterator[str], counted: _CountedRows, on_end: Callable[[int, str, str], None]
) -> Iterator[str]:
    """``lines``, then ``on_end(rows, status, error)`` however the stream ends.

    ``finished`` when every row was read; ``failed`` when reading raised; ``cut_off``
    when the response was closed before the end (the client went away: the server
    closes the response, Django closes this generator, its ``finally`` runs).
    """
    try:
        yield from lines
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
        status = "finished" if counted.finished else "failed" if counted.error else "cut_off"
        on_end(counted.count, status, counted.error)


class CsvExportMixin(_ModelAdminBase):
    """Adds ``<list>/export.csv`` to a ModelAdmin: the list as it is filtered, as CSV."""

    #: Never exported: secrets and password hashes.
    csv_exclude_fields: tuple[str, ...] = ("password",)
    csv_chunk_size = 2000

    def csv_rows(
        self, request: HttpRequest, fields: list[models.Field | None], rows: Iterable[Any]
    ) -> Iterable[Any]:
        """The value-masking hook (portal/admin/secrets.py): rows as they are exported."""
        return rows

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

    def get_csv_columns(self, request: HttpRequest) -> list[CsvColumn]:
        """The exported columns, headed as the pages name them (the fields' verbose
        names). A ModelAdmin adds the computed columns its list shows."""
        return [
            CsvColumn(capfirst(f.verbose_name), f.attname) for f in self.get_csv_fields(request)
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

    def export_csv_view(self, request: HttpRequest) -> HttpResponseBase:
        """The current filtered, searched and ordered list as CSV, streamed.

        Rows come in chunks by keyset pagination (:func:`keyset_rows`): memory stays
        flat however many rows match, no transaction or cursor outlives a chunk, and a
        client that leaves stops the export before the next chunk.
        """
        if not self.csv_export_enabled(request):
            raise PermissionDenied
        dialect = request.GET.get(DIALECT_PARAM, "csv")
        if dialect not in DIALECTS:
            dialect = "csv"
        if DIALECT_PARAM in request.GET:
            # Not a filter of the list: the changelist must not see it.
            params = request.GET.copy()
            del params[DIALECT_PARAM]
            request.GET = params  # type: ignore[assignment]  # a mutable copy, on purpose
        changelist_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
            current_app=self.admin_site.name,
        )
        if invalid_lookups(cast(Any, self).model, dict(request.GET.lists())):
            # The list names what is wrong with the filters; no CSV is made from them.
            return HttpResponseRedirect(f"{changelist_url}?{request.GET.urlencode()}")
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        columns = self.get_csv_columns(request)
        sources = list(dict.fromkeys(c.source for c in columns))
        position = {source: i for i, source in enumerate(sources)}
        by_attname = {f.attname: f for f in self.opts.concrete_fields}
        # Secrets are masked on the values as read (the JSON columns among the sources).
        fetched = self.csv_rows(
            request,
            [by_attname.get(source) for source in sources],
            keyset_rows(cl.queryset, sources, self.csv_chunk_size),
        )
        rows = (
            [
                c.cell(row[position[c.source]]) if c.cell else row[position[c.source]]
                for c in columns
            ]
            for row in fetched
        )
        counted = _CountedRows(rows)

        def on_end(count: int, status: str, error: str) -> None:
            # Also a trace of an export cut off half-way (the response is closed).
            record_export(
                model=self.model,
                rows=count,
                status=status,
                columns=sources,
                request=request,
                error=error,
            )

        lines = audited_stream(
            stream_csv([c.label for c in columns], counted, dialect=dialect), counted, on_end
        )
        response = StreamingHttpResponse(
            in_language(lines, translation.get_language()),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        )
        return response


# --- rows by keyset pagination -------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    path: str  # an ORM path (``created_at``, ``company__name``)
    descending: bool
    nulls_first: bool  # where NULLs sort in this key's direction
    nullable: bool


def _field_for_path(model: type[models.Model], path: str) -> models.Field | None:
    opts = model._meta
    field = None
    for part in path.split("__"):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
    return field  # type: ignore[return-value]


def _nullable(model: type[models.Model], path: str) -> bool:
    opts = model._meta
    nullable = False
    for part in path.split("__"):
        if part == "pk":
            break
        field = opts.get_field(part)
        nullable = nullable or bool(getattr(field, "null", False))
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
    return nullable


def ordering_keys(queryset: QuerySet) -> list[_Key] | None:
    """The queryset's ORDER BY as keyset keys, ending with the primary key; None when an
    item is not a plain column (an expression, a relation's own ordering, random)."""
    model = queryset.model
    pk = model._meta.pk.attname
    items = list(queryset.query.order_by) or list(model._meta.ordering)
    keys: list[_Key] = []
    for item in items:
        if isinstance(item, str):
            descending, name = item.startswith("-"), item.lstrip("-+")
            nulls_first: bool | None = None
        elif isinstance(item, OrderBy) and isinstance(item.expression, F):
            descending, name = item.descending, str(item.expression.name)  # type: ignore[attr-defined]
            nulls_first = True if item.nulls_first else (False if item.nulls_last else None)
        else:
            return None
        if name == "pk":
            name = pk
        field = None if name == "?" else _field_for_path(model, name)
        if field is None:
            return None
        # Whether the key can be NULL, read from the path as written: after the rename
        # below, an attname such as a primary key ``session_id`` is no field *name*.
        nullable = _nullable(model, name)
        if field.is_relation:
            # Ordering by a relation orders by the related model's ordering; keep the
            # ids instead (a plain column the keyset can continue from).
            name = f"{name}_id" if "__" not in name else f"{name}__pk"
        if nulls_first is None:
            nulls_first = descending  # PostgreSQL: NULLs are larger than any value
        keys.append(_Key(name, descending, nulls_first, nullable))
        if name in {pk, "pk"}:
            return keys
    keys.append(_Key(pk, False, False, False))
    return keys


def _after(key: _Key, value: Any) -> Q | None:
    """Rows strictly after ``value`` in this key's order (None: no such rows)."""
    if value is None:
        # NULLs first: every non-NULL comes after; NULLs last: nothing does.
        return Q(**{f"{key.path}__isnull": False}) if key.nulls_first else None
    after = Q(**{f"{key.path}__{'lt' if key.descending else 'gt'}": value})
    if key.nullable and not key.nulls_first:
        after |= Q(**{f"{key.path}__isnull": True})
    return after


def _equal(key: _Key, value: Any) -> Q:
    return Q(**{f"{key.path}__isnull": True}) if value is None else Q(**{key.path: value})


def keyset_filter(keys: list[_Key], values: list[Any]) -> Q:
    """``(k1, k2, ...) > (v1, v2, ...)`` in the keys' own directions and NULL order."""
    condition = Q(pk__in=[])
    equal_so_far = Q()
    for key, value in zip(keys, values, strict=True):
        after = _after(key, value)
        if after is not None:
            condition |= equal_so_far & after
        equal_so_far &= _equal(key, value)
    first, first_value = keys[0], values[0]
    if first_value is not None and not first.nullable:
        # The same condition with its leading column bounded: the index scan starts at
        # the last row instead of filtering from the top.
        bound = "lte" if first.descending else "gte"
        condition &= Q(**{f"{first.path}__{bound}": first_value})
    return condition


def keyset_rows(queryset: QuerySet, columns: list[str], chunk_size: int) -> Iterator[tuple]:
    """The rows of ``queryset`` (its values for ``columns``), chunk by chunk."""
    keys = ordering_keys(queryset)
    if keys is None:
        # An order no keyset can continue: the primary key's, which it can.
        queryset = queryset.order_by(queryset.model._meta.pk.attname)
        keys = ordering_keys(queryset)
        assert keys is not None
    order = [
        OrderBy(
            F(k.path),
            descending=k.descending,
            nulls_first=k.nulls_first or None,
            nulls_last=(not k.nulls_first) or None,
        )
        for k in keys
    ]
    key_names = [f"_portal_key{i}" for i in range(len(keys))]
    base = (
        queryset.order_by(*order)
        .annotate(**{n: F(k.path) for n, k in zip(key_names, keys, strict=True)})
        .values_list(*columns, *key_names)
    )
    width = len(columns)
    last: list[Any] | None = None
    while True:
        chunk_qs = base if last is None else base.filter(keyset_filter(keys, last))
        chunk = list(chunk_qs[:chunk_size])
        for row in chunk:
            yield row[:width]
        if len(chunk) < chunk_size:
            return
        last = list(chunk[-1][width:])
