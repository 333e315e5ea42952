"""The rows of a changelist, built with the per-row work planned once per request.

Django's ``{% result_list %}`` (``admin_list.items_for_result``) works out, for every
cell of every row, how the cell is produced: it looks the column up on the model and
the ModelAdmin, asks for the empty value, reverses the object's URL and merges the
preserved filters into it, renders the action checkbox through the form widget
templates. On a page of 50 rows and 9 columns that is most of the time the list page
takes. :func:`portal_result_list` makes those decisions once per column and then only
builds the cells, producing the same markup as Django (th/td, ``field-<name>`` classes,
the action checkbox, links with preserved filters, boolean icons, ``nowrap``, the empty
value), so the admin's CSS and JavaScript keep working. A test compares its output with
Django's for every registered model.

What it does not handle (an editable list, ``list_editable``) is rendered by Django's
own ``result_list``.

It mirrors Django 5.2's ``django/contrib/admin/templatetags/admin_list.py``
(``result_list``, ``items_for_result``, ``result_hidden_fields``) and uses some of its
private helpers, so a Django upgrade must re-check it: ``tests/admin/test_rows.py``
compares its output byte for byte with Django's for every registered model. It is kept
because it pays for itself: ``tests/bench/render.py`` (``make bench``) measures what it
saves per list page against Django's own rendering (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote as url_quote

from django.conf import settings
from django.contrib.admin import ModelAdmin
from django.contrib.admin.templatetags.admin_list import (  # type: ignore[attr-defined]
    # _boolean_icon and _coerce_field_name are private: django-stubs does not declare them.
    ResultList,
    _boolean_icon,
    _coerce_field_name,
    result_headers,
    result_hidden_fields,
    result_list,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.utils import (  # type: ignore[attr-defined]
    # _get_non_gfk_field is private: django-stubs does not declare it.
    FieldIsAForeignKeyColumnName,
    _get_non_gfk_field,
    display_for_field,
    display_for_value,
    lookup_field,
    quote,
)
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.template import Library
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.formats import get_format
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = Library()

#: Stands for a value in markup rendered once per request; only letters and digits,
#: so neither HTML escaping nor URL quoting changes it.
_MARK = "PortalRowMark{}Z7q"
#: What ``reverse()`` leaves unquoted in a path (the ``pchar`` of RFC 3986).
_PATH_SAFE = "!$&'()*+,;=" + "/~:@"

Cell = Callable[[models.Model], str]


def _html(value: Any) -> str:
    """``conditional_escape`` with the common cases first: it runs for every cell, and
    Django's ``escape`` first checks each argument for lazy strings."""
    kind = type(value)
    if kind is SafeString:
        return value
    if kind is str:
        return html.escape(value)  # what escape() does to a str
    return conditional_escape(value)


class _Markup:
    """Markup rendered once with marks where per-row values go (already escaped)."""

    def __init__(self, rendered: str, count: int) -> None:
        marks = [_MARK.format(i) for i in range(count)]
        pieces = re.split("(" + "|".join(marks) + ")", rendered)
        self.parts = pieces[::2]
        self.order = [marks.index(m) for m in pieces[1::2]]
        self.valid = sorted(self.order) == list(range(count))

    def fill(self, *values: str) -> str:
        out = [self.parts[0]]
        for index, part in zip(self.order, self.parts[1:], strict=True):
            out.append(values[index])
            out.append(part)
        return "".join(out)


class _DateTimeText:
    """``formats.localize(timezone.template_localtime(value))`` for a datetime, with the
    format string, its parsing and the time zone looked up once per page."""

    def __init__(self) -> None:
        pieces = re_formatchars.split(str(get_format("DATETIME_FORMAT")))
        # (True, method name of DateFormat) or (False, literal text), as Formatter.format.
        self.pieces = [
            (True, piece) if i % 2 else (False, re_escaped.sub(r"\1", piece))
            for i, piece in enumerate(pieces)
            if i % 2 or piece
        ]
        self.zone = timezone.get_current_timezone() if settings.USE_TZ else None

    def __call__(self, value: datetime.datetime) -> str:
        if self.zone is not None and value.utcoffset() is not None:
            value = value.astimezone(self.zone)
        df = DateFormat(value)
        return "".join([str(getattr(df, p)()) if call else p for call, p in self.pieces])


def _link_columns(cl: ChangeList) -> list[bool]:
    """Which columns link to the object, as ``items_for_result`` decides it."""
    links, first = [], True
    for name in cl.list_display:
        if cl.list_display_links is None:
            link = False
        elif first and not cl.list_display_links:
            link = True
        else:
            link = name in cl.list_display_links
        links.append(link)
        first = first and not link
    return links


class _ObjectURL:
    """The change URL of a row, with the preserved filters: one ``reverse()`` per page.

    The URL is reversed for a mark instead of a primary key, the preserved filters are
    merged into it, and each row puts its quoted key where the mark was. Keys are
    quoted as ``reverse()`` quotes them (admin ``quote`` then percent-encoding).
    """

    def __init__(self, cl: ChangeList) -> None:
        self.cl = cl
        self.prefix = self.suffix = None
        if type(cl).url_for_result is not ChangeList.url_for_result:
            return  # a ChangeList that builds its own URLs: ask it per row
        mark = _MARK.format("pk")
        try:
            url = reverse(
                f"admin:{cl.opts.app_label}_{cl.opts.model_name}_change",
                args=(mark,),
                current_app=cl.model_admin.admin_site.name,
            )
        except NoReverseMatch:
            return
        url = add_preserved_filters(
            {"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url
        )
        if url.count(mark) == 1:
            prefix, suffix = url.split(mark)
            self.prefix, self.suffix = html.escape(prefix), html.escape(suffix)

    def html(self, obj: models.Model) -> str | None:
        """The escaped URL for an ``href``, or None when the object has no change URL."""
        if self.prefix is not None and self.suffix is not None:  # both set, or neither
            key = str(quote(getattr(obj, self.cl.pk_attname)))
            if key:
                return self.prefix + html.escape(url_quote(key, safe=_PATH_SAFE)) + self.suffix
        try:
            url = self.cl.url_for_result(obj)
        except NoReverseMatch:
            return None
        context: dict[str, Any] = {
            "preserved_filters": self.cl.preserved_filters,
            "opts": self.cl.opts,
        }
        return html.escape(add_preserved_filters(context, url))


def _action_checkbox(model_admin: ModelAdmin) -> Callable[[models.Model], str] | None:
    """The stock action checkbox as markup with marks for the key and the label."""
    if type(model_admin).action_checkbox is not ModelAdmin.action_checkbox:
        return None
    from django import forms
    from django.contrib.admin import helpers

    label = SafeString(gettext("Select this object for an action - {}").format(_MARK.format(1)))
    widget = forms.CheckboxInput({"class": "action-select", "aria-label": label}, lambda v: False)
    markup = _Markup(widget.render(helpers.ACTION_CHECKBOX_NAME, _MARK.format(0)), 2)
    if not markup.valid:
        return None

    def render(obj: models.Model) -> str:
        key = str(obj.pk)
        if key == "":
            return model_admin.action_checkbox(obj)
        # The widget's own markup with the escaped key and label put in.
        return mark_safe(markup.fill(html.escape(key), html.escape(str(obj))))  # noqa: S308

    return render


class _Column:
    """How one column's cells are produced, decided once per request."""

    def __init__(self, cl: ChangeList, index: int, name: Any, link: bool, tag: str) -> None:
        model_admin = cl.model_admin
        self.cl, self.name, self.link, self.tag = cl, name, link, tag
        self.empty = model_admin.get_empty_value_display()
        self.classes = [f"field-{_coerce_field_name(name, index)}"]
        # A related object that is gone: the ModelAdmin's empty value, plain class.
        self.missing_html = conditional_escape(self.empty)
        self.missing_class_attr = f' class="{self.classes[0]}"'
        self.urls: _ObjectURL | None = None
        self.boolean = False
        self.plain_ints = _plain_ints()
        self.field: models.Field | None = None
        self.attr: Any = None
        self.getter: Callable[[models.Model], Any] | None = None
        try:
            if callable(name):
                raise FieldDoesNotExist
            self.field = _get_non_gfk_field(cl.lookup_opts, name)
        except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
            if callable(name):
                self.attr = self.getter = name
            elif hasattr(model_admin, name) and name != "__str__":
                self.attr = self.getter = getattr(model_admin, name)
                if name == "action_checkbox":
                    self.getter = _action_checkbox(model_admin) or self.getter
            # else: an attribute of the model, resolved per row by lookup_field.
        else:
            self.getter = _attribute(name)

        field = self.field
        self.by_value = field is None or field.auto_created  # display_for_value
        if self.by_value:
            if self.getter is not None:
                self.empty = getattr(self.attr, "empty_value_display", self.empty)
                self.boolean = getattr(self.attr, "boolean", False)
                if name == "action_checkbox":
                    self.classes = ["action-checkbox"]
        else:
            assert field is not None  # by_value covers a missing field
            if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
                self.classes.append("nowrap")
            self.related = isinstance(field.remote_field, models.ManyToOneRel)
            self.format = self._field_formatter(field)
        self.class_attr = f' class="{" ".join(self.classes)}"'
        self.class_attr_nowrap = f' class="{" ".join([*self.classes, "nowrap"])}"'
        self.empty_html = conditional_escape(self.empty)

    def _field_formatter(self, field: models.Field) -> Callable[[Any], str]:
        """``display_for_field`` for this field, escaped, with the per-call lookups done."""
        empty, avoid_link = self.empty, self.link

        def generic(value: Any) -> str:
            return _html(display_for_field(value, field, empty, avoid_link))

        if getattr(field, "flatchoices", None):
            try:
                choices = {k: conditional_escape(v) for k, v in dict(field.flatchoices).items()}
            except TypeError:
                return generic
            empty_html = conditional_escape(empty)

            def choice(value: Any) -> str:
                try:
                    return choices.get(value, empty_html)
                except TypeError:  # an unhashable value: Django's own path
                    return generic(value)

            return choice
        if isinstance(field, models.BooleanField):
            icons = {value: _boolean_icon(value) for value in (True, False, None)}

            def boolean(value: Any) -> str:
                if value is None or type(value) is bool:
                    return icons[value]
                return generic(value)

            return boolean
        if isinstance(field, models.DateTimeField):
            as_text = _DateTimeText()

            def moment(value: Any) -> str:
                if type(value) is datetime.datetime:
                    return html.escape(as_text(value))
                return generic(value)

            return moment
        if isinstance(field, models.IntegerField) and self.plain_ints:

            def integer(value: Any) -> str:
                return str(value) if type(value) is int else generic(value)

            return integer
        if type(field) in (models.CharField, models.TextField):
            # display_for_field shows a text as it is, and None or "" as the empty value.
            empty_html = conditional_escape(empty)

            def text(value: Any) -> str:
                if type(value) is str:
                    return html.escape(value) if value else empty_html
                return empty_html if value is None else generic(value)

            return text
        return generic

    def cell(self, obj: models.Model) -> str:
        class_attr = self.class_attr
        content: str
        try:
            if self.getter is None:
                return self._cell_by_lookup(obj)
            value = self.getter(obj)
        except ObjectDoesNotExist:
            class_attr, content = self.missing_class_attr, self.missing_html
        else:
            if isinstance(value, str) and value.strip() == "":
                value = ""
            if self.by_value:
                if value and not self.boolean and type(value) in (str, SafeString):
                    # display_for_value returns a non-empty string as it is.
                    content = _html(value)
                elif type(value) is int and self.plain_ints and not self.boolean:
                    content = str(value)  # number_format without grouping
                else:
                    if isinstance(value, (datetime.date, datetime.time)):
                        class_attr = self.class_attr_nowrap
                    content = _html(display_for_value(value, self.empty, self.boolean))
            elif self.related:
                content = self.empty_html if value is None else _html(value)
            else:
                content = self.format(value)
        return self._wrap(obj, class_attr, content)

    def _cell_by_lookup(self, obj: models.Model) -> str:
        """A model attribute, method or property: ``items_for_result`` step by step."""
        empty, classes = self.empty, list(self.classes)
        _field, attr, value = lookup_field(self.name, obj, self.cl.model_admin)
        empty = getattr(attr, "empty_value_display", empty)
        if isinstance(value, str) and value.strip() == "":
            value = ""
        boolean = getattr(attr, "boolean", False)
        if isinstance(attr, property) and hasattr(attr, "fget"):
            boolean = getattr(attr.fget, "boolean", False)
        content = _html(display_for_value(value, empty, boolean))
        if isinstance(value, (datetime.date, datetime.time)):
            classes.append("nowrap")
        return self._wrap(obj, f' class="{" ".join(classes)}"', content)

    def _wrap(self, obj: models.Model, class_attr: str, content: str) -> str:
        tag = self.tag
        if self.urls is not None:
            url = self.urls.html(obj)
            if url is not None:
                popup = ""
                if self.cl.is_popup:
                    cl = self.cl
                    key = obj.serializable_value(str(cl.to_field) if cl.to_field else cl.pk_attname)
                    popup = f' data-popup-opener="{conditional_escape(key)}"'
                content = f'<a href="{url}"{popup}>{content}</a>'
        return f"<{tag}{class_attr}>{content}</{tag}>"


def _plain_ints() -> bool:
    """Whether ``number_format`` shows an int as ``str(int)`` (no thousand separators)."""
    return not settings.USE_THOUSAND_SEPARATOR


def _attribute(name: str) -> Callable[[models.Model], Any]:
    def get(obj: models.Model) -> Any:
        return getattr(obj, name)

    return get


def row_cells(cl: ChangeList) -> list[Cell]:
    """One function per column producing that column's ``<td>``/``<th>`` for a row."""
    columns, first, urls = [], True, None
    for index, (name, link) in enumerate(zip(cl.list_display, _link_columns(cl), strict=True)):
        tag = "th" if (link and first) else "td"
        column = _Column(cl, index, name, link, tag)
        if link:
            first = False
            column.urls = urls = urls or _ObjectURL(cl)
        columns.append(column)
    return [column.cell for column in columns]


def supports(cl: ChangeList) -> bool:
    """Whether :func:`rows` can render this list (editable lists are Django's)."""
    return cl.formset is None


def rows(cl: ChangeList) -> list[str]:
    """The inner HTML of each ``<tr>`` of the page, as ``items_for_result`` makes it."""
    cells = row_cells(cl)
    # Each cell escaped its content, as format_html does in items_for_result.
    return [mark_safe("".join([cell(obj) for cell in cells])) for obj in cl.result_list]  # noqa: S308


def portal_result_list(cl: ChangeList) -> dict[str, Any]:
    """The context of ``change_list_results.html``, like Django's ``result_list``."""
    if not supports(cl):
        return result_list(cl)
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        # One item per row: the template joins a row's items, so this is the same markup.
        "results": [ResultList(None, [row]) for row in rows(cl)],
    }


@register.tag(name="portal_result_list")
def portal_result_list_tag(parser, token):
    # django-stubs 6 adds Django 6.0's leading "name" argument; Django 5.2 has none.
    return InclusionAdminNode(  # type: ignore[call-arg]
        parser,
        token,
        func=portal_result_list,
        template_name="change_list_results.html",
        takes_context=False,
    )
