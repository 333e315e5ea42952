"""Changelists that stay fast and safe on tables of tens of millions of rows.

:class:`LargeTableAdminMixin` is mixed into the portal's base ModelAdmin: estimated
counts instead of ``COUNT(*)`` (:mod:`portal.admin.estimates`), no facet counts, a cap on
how deep pagination goes on estimated lists (an ``OFFSET`` of millions reads millions of
rows), 404 pages for unknown or malformed ids, and bad query strings answered with a
message instead of a server error. The CSV export is :mod:`portal.admin.export`, the
list filters :mod:`portal.admin.filters`.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters, ModelAdmin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import DataError, OperationalError, connections, models, router
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext

from portal.admin.estimates import RowCount, count_rows, humanize
from portal.admin.forms import JSONTextarea, PrettyJSONFormField
from portal.admin.validation import invalid_lookups
from portal.limits import LOCK_NOT_AVAILABLE, describe, is_timeout, sqlstate, statement_limits

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
        mask = getattr(self.model_admin, "mask_list_rows", None)
        if mask is not None:
            mask(request, self.result_list)
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


def _url_name_ends(request: HttpRequest, suffix: str) -> bool:
    """Whether the admin URL ``request`` resolved to is named ``<app>_<model><suffix>``."""
    match = request.resolver_match
    return match is not None and match.url_name is not None and match.url_name.endswith(suffix)


def is_changelist_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for a list page: the one place a ModelAdmin's queryset may
    leave out the wide columns (whole texts, JSON) that only the change page shows."""
    return _url_name_ends(request, "_changelist")


def is_change_page_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for an object's change (or view) page: the one query that
    reads the object may carry what only that page shows."""
    return _url_name_ends(request, "_change")


def is_csv_export_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for a list's CSV export (portal/admin/export.py): the list's
    rows, so the computed columns the list shows (and the export adds) are needed too."""
    return _url_name_ends(request, "_export_csv")


def set_local(name: str, value: str, using: str = "default", **more: str) -> None:
    """``SET LOCAL`` settings for the rest of the current transaction, in one round trip
    (``name`` and ``value``, then any ``setting=value`` keywords)."""
    pairs = [(name, value), *more.items()]
    calls = ", ".join(f"set_config(%(n{i})s, %(v{i})s, true)" for i in range(len(pairs)))
    params = {}
    for i, (n, v) in enumerate(pairs):
        params[f"n{i}"], params[f"v{i}"] = n, v
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {calls}", params)


def is_query_canceled(exc: BaseException) -> bool:
    """A statement stopped by ``statement_timeout`` (SQLSTATE 57014)."""
    return sqlstate(exc) == "57014"


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
    #: lists are built to answer in milliseconds), nor wait longer than
    #: ``list_lock_timeout`` for a lock (DDL or a bulk write on the table).
    list_statement_timeout = "5s"
    list_lock_timeout = "1s"
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
        request = drop_invalid_filters(cast(Any, self).model, request)
        term = request.GET.get("q", "")
        if len(term) > self.max_search_length:
            messages.warning(
                request,
                gettext("Search terms are limited to %(limit)s characters; yours had %(length)s.")
                % {
                    "limit": self.max_search_length,
                    "length": number_format(len(term), force_grouping=True),
                },
            )
        if ERROR_FLAG in request.GET:
            messages.warning(
                request,
                gettext("Some filter or sort values in the address were not valid and were reset."),
            )
        extra_context = {**(extra_context or {}), **self._list_context(request)}
        using = self._db(request)
        try:
            # Every statement of the list within the list's limits (no transaction: a
            # list only reads). The response is rendered here so errors surface here.
            with statement_limits(
                _ms(self.list_statement_timeout), _ms(self.list_lock_timeout), using
            ):
                response = super().changelist_view(request, extra_context)
                if isinstance(response, SimpleTemplateResponse):
                    response.render()
        except (DataError, OperationalError) as exc:
            if is_timeout(exc):
                return self.list_unavailable(request, exc)
            if isinstance(exc, OperationalError):
                raise
            if ERROR_FLAG in request.GET:
                return SimpleTemplateResponse(
                    "admin/invalid_setup.html",
                    {"title": gettext("Invalid list parameters")},
                    status=400,
                )
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return response

    def list_unavailable(self, request: HttpRequest, exc: BaseException) -> TemplateResponse:
        """The list's page when its query was stopped: the search and filters as they
        were, what happened, and narrower next steps. 503: the list exists, the server
        could not produce it in time."""
        tables = [self.opts.db_table] + [
            f.related_model._meta.db_table
            for f in self.opts.concrete_fields
            if f.is_relation and f.related_model is not None
        ]
        reason = describe(
            exc,
            statement_ms=_ms(self.list_statement_timeout),
            lock_ms=_ms(self.list_lock_timeout),
            tables=tables,
            using=self._db(request),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("%(things)s: not shown")
            % {"things": str(self.opts.verbose_name_plural).capitalize()},
            "opts": self.opts,
            "reason": reason,
            "is_lock": sqlstate(exc) == LOCK_NOT_AVAILABLE,
            **narrower_steps(request, self.date_hierarchy or self._date_filter_field(request)),
        }
        response = TemplateResponse(
            request, "admin/portal/list_unavailable.html", context, status=503
        )
        response["Retry-After"] = "5"
        return response

    def _date_filter_field(self, request: HttpRequest) -> str | None:
        from portal.admin.filters import DateRangeFilter

        for entry in self.get_list_filter(request):
            if isinstance(entry, tuple) and len(entry) == 2 and entry[1] is DateRangeFilter:
                field = entry[0]
                return field if isinstance(field, str) else field.name
        return None

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
        spreadsheet = params.copy()
        spreadsheet["dialect"] = "spreadsheet"
        return {
            "export_csv_url": f"{url}?{params.urlencode()}" if params else url,
            "export_spreadsheet_url": f"{url}?{spreadsheet.urlencode()}",
        }

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


def drop_invalid_filters(model: type[models.Model], request: HttpRequest) -> HttpRequest:
    """The request without the filters whose values cannot reach SQL, each named in a
    message (portal/admin/validation.py); the list shows with the other filters."""
    problems = invalid_lookups(model, dict(request.GET.lists()))
    if not problems:
        return request
    params = request.GET.copy()
    for key, reason in problems.items():
        params.pop(key, None)
        shown = key.replace("\x00", "\\0")[:60]
        messages.warning(
            request,
            gettext("Filter %(name)s ignored: the value %(reason)s.")
            % {"name": repr(shown), "reason": reason},
        )
    request.GET = params  # type: ignore[assignment]  # a mutable copy, on purpose
    return request


def _ms(value: str) -> int:
    """A PostgreSQL duration as written in these admins ("400ms", "5s") in milliseconds."""
    value = value.strip()
    if value.endswith("ms"):
        return int(float(value[:-2]))
    if value.endswith("s"):
        return int(float(value[:-1]) * 1000)
    return int(float(value))


def narrower_steps(request: HttpRequest, date_field: str | None) -> dict[str, Any]:
    """The list's search and filters as they were, and smaller lists to try instead."""
    params = request.GET.copy()
    for name in (PAGE_VAR, ERROR_FLAG):
        params.pop(name, None)
    term = params.get(SEARCH_VAR, "")
    filters = []
    for key in params:
        if key in {SEARCH_VAR, ORDER_VAR}:
            continue
        without = params.copy()
        without.pop(key)
        filters.append(
            {"name": key, "value": ", ".join(params.getlist(key)), "without": without.urlencode()}
        )
    hidden = [(k, v) for k in params if k != SEARCH_VAR for v in params.getlist(k)]
    steps = []
    if date_field and f"{date_field}__gte" not in params:
        since = (timezone.now() - datetime.timedelta(days=1)).replace(second=0, microsecond=0)
        narrower = params.copy()
        narrower[f"{date_field}__gte"] = timezone.localtime(since).isoformat("T", "minutes")
        steps.append(
            {"label": gettext("the same list, last 24 hours only"), "query": narrower.urlencode()}
        )
    if term:
        without = params.copy()
        without.pop(SEARCH_VAR)
        steps.append(
            {
                "label": gettext("the same filters without the search"),
                "query": without.urlencode(),
            }
        )
    if ORDER_VAR in params:
        without = params.copy()
        without.pop(ORDER_VAR)
        steps.append(
            {"label": gettext("the default order (index-backed)"), "query": without.urlencode()}
        )
    return {
        "search_term": term,
        "hidden_params": hidden,
        "active_filters": filters,
        "retry_query": params.urlencode(),
        "narrower": steps,
    }


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        return None


#: A UUID prefix as a list shows it (``3f2a9c1e``, with or without dashes): at least this
#: many hex digits, so that a short word is not taken for one.
MIN_UUID_PREFIX = 4


def uuid_prefix_range(value: str) -> tuple[UUID, UUID | None] | None:
    """The UUIDs that start with the hex prefix ``value``, as ``[low, high)``.

    PostgreSQL orders ``uuid`` byte by byte, which is the order of their hex text, so
    ``id >= low AND id < high`` is the prefix match, served by the uuid column's B-tree
    index (``high`` is None when the prefix is all ``f``: no upper bound).
    """
    digits = value.strip().replace("-", "").lower()
    hex_only = all(c in "0123456789abcdef" for c in digits)
    if not (MIN_UUID_PREFIX <= len(digits) < 32) or not hex_only:
        return None
    low = UUID(digits.ljust(32, "0"))
    following = int(digits, 16) + 1
    if following >= 16 ** len(digits):
        return low, None
    return low, UUID(f"{following:0{len(digits)}x}".ljust(32, "0"))


def uuid_prefix_q(field: str, value: str) -> models.Q | None:
    """``Q`` for ``field`` starting with the UUID prefix ``value`` (None: not a prefix)."""
    bounds = uuid_prefix_range(value)
    if bounds is None:
        return None
    low, high = bounds
    condition = models.Q(**{f"{field}__gte": low})
    if high is not None:
        condition &= models.Q(**{f"{field}__lt": high})
    return condition
