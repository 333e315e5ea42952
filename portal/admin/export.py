"""CSV export of the current filtered, searched and ordered list, streamed."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import capfirst


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


#: ``?dialect=`` of the export: the standard comma-separated file, or one a spreadsheet
#: in a comma-decimal locale (Excel, LibreOffice in de/fr/pt-BR...) opens in columns:
#: ``;`` between cells and a UTF-8 byte order mark so accents survive.
DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {"delimiter": ",", "bom": False},
    "spreadsheet": {"delimiter": ";", "bom": True},
}
DIALECT_PARAM = "dialect"


@dataclass(frozen=True)
class CsvColumn:
    """One exported column: its header, the queryset value it reads, and how a value of
    that source becomes the cell (default: as it is)."""

    label: str
    source: str
    cell: Callable[[Any], Any] | None = None


def stream_csv(
    header: list[str], rows: Iterable[Iterable[Any]], *, dialect: str = "csv"
) -> Iterator[str]:
    options = DIALECTS[dialect]
    writer = csv.writer(_Echo(), delimiter=options["delimiter"])
    first = writer.writerow(header)
    yield ("\ufeff" + first) if options["bom"] else first
    for row in rows:
        yield writer.writerow([_csv_cell(v) for v in row])


class CsvExportMixin:
    """Adds ``<list>/export.csv`` to a ModelAdmin: the list as it is filtered, as CSV."""

    #: Never exported: secrets and password hashes.
    csv_exclude_fields: tuple[str, ...] = ("password",)
    csv_chunk_size = 2000

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
            CsvColumn(capfirst(str(f.verbose_name)), f.attname)
            for f in self.get_csv_fields(request)
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
        dialect = request.GET.get(DIALECT_PARAM, "csv")
        if dialect not in DIALECTS:
            dialect = "csv"
        if DIALECT_PARAM in request.GET:
            # Not a filter of the list: the changelist must not see it.
            params = request.GET.copy()
            del params[DIALECT_PARAM]
            request.GET = params
        changelist_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
            current_app=self.admin_site.name,
        )
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        columns = self.get_csv_columns(request)
        sources = list(dict.fromkeys(c.source for c in columns))
        position = {source: i for i, source in enumerate(sources)}
        fetched = cl.queryset.values_list(*sources).iterator(chunk_size=self.csv_chunk_size)
        rows = (
            [
                c.cell(row[position[c.source]]) if c.cell else row[position[c.source]]
                for c in columns
            ]
            for row in fetched
        )
        response = StreamingHttpResponse(
            stream_csv([c.label for c in columns], rows, dialect=dialect),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        )
        return response
