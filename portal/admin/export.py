"""CSV export of the current filtered, searched and ordered list, streamed."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from django.contrib.admin.options import IncorrectLookupParameters, ModelAdmin
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import path, reverse
from django.utils import timezone

from audit.services import record_export
from portal.admin.validation import invalid_lookups


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
        self, request: HttpRequest, fields: list[models.Field], rows: Iterable[Any]
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

        Rows come through a server-side cursor in chunks (``QuerySet.iterator``), so
        memory stays flat however many rows match.
        """
        if not self.csv_export_enabled(request):
            raise PermissionDenied
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
        fields = self.get_csv_fields(request)
        rows = cl.queryset.values_list(*[f.attname for f in fields]).iterator(
            chunk_size=self.csv_chunk_size
        )
        rows = self.csv_rows(request, fields, rows)
        columns = [f.attname for f in fields]
        counted = _CountedRows(rows)

        def on_end(count: int, status: str, error: str) -> None:
            # Also a trace of an export cut off half-way (the response is closed).
            record_export(
                model=self.model,
                rows=count,
                status=status,
                columns=columns,
                request=request,
                error=error,
            )

        response = StreamingHttpResponse(
            audited_stream(stream_csv(columns, counted), counted, on_end),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        )
        return response
