"""The navigation sidebar's model list, rendered once per distinct content.

Every admin page renders ``admin/app_list.html`` in its sidebar: about fifteen models,
each with three ``request.path|urlencode`` tests and several translations, a tenth of a
list page's time. The markup depends only on what the template reads: the language,
the apps and models shown (names, URLs, view-only), ``show_changelinks``, and which of
those URLs occur in the current path. :func:`portal_app_list` renders the template once
for each such combination and reuses the text; the output is the same bytes as
``{% include "admin/app_list.html" %}`` (a test compares them).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.template import Library
from django.template.context import Context
from django.template.defaultfilters import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = Library()

#: Rendered sidebars kept per process; a full cache is emptied and starts again.
MAX_ENTRIES = 512
_rendered: dict[tuple, SafeString] = {}
_lock = threading.Lock()


def _in(url: Any, path: str) -> bool:
    """``{% if url in path %}``: a missing URL (None) is False, as in the template."""
    try:
        return url in path
    except TypeError:
        return False


def content_key(app_list: list[dict], path: str, show_changelinks: bool) -> tuple:
    """Everything ``admin/app_list.html`` reads, as a hashable value.

    The names are left out: each is fixed by its app label or model (its verbose name)
    and the language, all in the key; turning some twenty lazy names into text on every
    request cost more than the rest of the key.
    """
    path = urlencode(path)
    apps = []
    for app in app_list:
        models = tuple(
            (
                m.get("object_name"),
                m.get("admin_url"),
                m.get("add_url"),
                m.get("view_only"),
                _in(m.get("admin_url"), path),
            )
            for m in app.get("models", ())
        )
        apps.append(
            (
                str(app.get("app_label")),
                app.get("app_url"),
                _in(app.get("app_url"), path),
                models,
            )
        )
    return (get_language(), bool(show_changelinks), tuple(apps))


@register.simple_tag(takes_context=True)
def portal_app_list(context: Context, app_list: list[dict], show_changelinks: bool) -> str:
    """``{% include "admin/app_list.html" with app_list=... show_changelinks=... %}``."""
    # A tag renders inside a template's render(), which binds it to the context.
    assert context.template is not None
    template = context.template.engine.get_template("admin/app_list.html")
    request = context.get("request")
    if request is None or settings.DEBUG:
        # Without a request the template's path tests are unknown; in development
        # an edited template shows at once.
        with context.push(app_list=app_list, show_changelinks=show_changelinks):
            return template.render(context)
    key = content_key(app_list, request.path, show_changelinks)
    html = _rendered.get(key)
    if html is None:
        with context.push(app_list=app_list, show_changelinks=show_changelinks):
            html = SafeString(template.render(context))
        with _lock:
            if len(_rendered) >= MAX_ENTRIES:
                _rendered.clear()
            _rendered[key] = html
    return html
