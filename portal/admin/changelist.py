"""Changelists that stay fast and safe on tables of tens of millions of rows.

:class:`LargeTableAdminMixin` is mixed into the portal's base ModelAdmin: estimated
counts instead of ``COUNT(*)`` (:mod:`portal.admin.estimates`), no facet counts, a cap on
how deep pagination goes on estimated lists (an ``OFFSET`` of millions reads millions of
rows), 404 pages for unknown or malformed ids, and bad query strings answered with a
message instead of a server error. The CSV export is :mod:`portal.admin.export`, the
list filters :mod:`portal.admin.filters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters, ModelAdmin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import DataError, OperationalError, connections, models, router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext

from portal.admin.estimates import RowCount, count_rows, humanize
from portal.admin.forms import JSONTextarea, PrettyJSONFormField

#: Estimated lists paginate this deep at most; older rows are reached by filtering or by
#: reversing the order (both index-backed), never by an OFFSET of millions.
MAX_ESTIMATED_PAGES = 200


class EstimatedCountPaginator(Paginator):
    """Counts with :func:`portal.admin.estimates.count_rows`: exact when cheap, estimated else."""

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

    #: Only LargeTableAdminMixin.get_changelist returns this ChangeList.
    model_admin: LargeTableAdminMixin

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
    return (
        match is not None and match.url_name is not None and match.url_name.endswith("_changelist")
    )


def set_local(name: str, value: str, using: str = "default") -> None:
    """``SET LOCAL`` a setting for the rest of the current transaction."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%(name)s, %(value)s, true)", {"name": name, "value": value}
        )


def is_query_canceled(exc: BaseException) -> bool:
    """A statement stopped by ``statement_timeout`` (SQLSTATE 57014)."""
    return getattr(exc.__cause__, "sqlstate", None) == "57014"


if TYPE_CHECKING:
    # The mixins are only ever combined with ModelAdmin (portal.admin.base); for the
    # type checker they are ModelAdmins, so super() and self.opts etc. resolve.
    _ModelAdminBase = ModelAdmin[Any]
else:
    _ModelAdminBase = object


class LargeTableAdminMixin(_ModelAdminBase):
    """List defaults for large tables and the safety net for hostile input."""

    list_per_page = 50
    list_max_show_all = 200
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    #: Longer search strings return nothing with a message (they cannot be meant).
    max_search_length = 200
    #: No list page may keep the database busy longer than this (a safety net: the
    #: lists are built to answer in milliseconds).
    list_statement_timeout = "15s"
    formfield_overrides = {
        models.JSONField: {"form_class": PrettyJSONFormField, "widget": JSONTextarea},
    }

    if TYPE_CHECKING:
        # Provided by portal.admin.export.CsvExportMixin, mixed in alongside.
        def csv_export_enabled(self, request: HttpRequest) -> bool: ...

    # A read-only property where Django has a class attribute: Django only reads it.
    @property
    def change_list_template(self) -> list[str]:  # type: ignore[override]
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
        # Django 5.2 still accepts request=None (deprecated); django-stubs 6 types it
        # as required.
        return super().lookup_allowed(lookup, value, request)  # type: ignore[arg-type]

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
                gettext("Search terms are limited to %(limit)s characters; yours had %(length)s.")
                % {"limit": self.max_search_length, "length": number_format(len(term))},
            )
        if ERROR_FLAG in request.GET:
            messages.warning(
                request,
                gettext("Some filter or sort values in the address were not valid and were reset."),
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
                    gettext(
                        "The list took longer than %(timeout)s to compute and was stopped. "
                        "Narrow it with a filter or a more specific search."
                    )
                    % {"timeout": self.list_statement_timeout},
                )
            if ERROR_FLAG in request.GET:
                return SimpleTemplateResponse(
                    "admin/invalid_setup.html",
                    {"title": gettext("Invalid list parameters")},
                    status=400,
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

    # --- Unknown objects are a 404, not a redirect to the index --------------------

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with a message; an unknown or malformed id in
        # an address is a "not found", and says which id.
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("No such %(name)s") % {"name": opts.verbose_name},
            "opts": opts,
            "object_id": unquote(object_id),
            "changelist_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist",
                current_app=self.admin_site.name,
            ),
        }
        return TemplateResponse(request, "admin/portal/not_found.html", context, status=404)


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        return None
