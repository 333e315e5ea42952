"""``{% url %}`` with each distinct reversal done once per process.

Every admin page reverses a dozen URLs in its templates (the header's home, logout,
password, preferences and language links, the breadcrumbs, the object tools, the
script catalog), and one failing lookup (Django's ``base.html`` tries the admindocs
root with ``as docsroot``). Each ``reverse()`` walks the URL resolver: 20 to 110 µs
here, about half a millisecond of a change page. The answer depends only on the
arguments, the current app (the namespace instance), the script prefix, the URLconf
and the active language (translated or language-prefixed patterns), so the tag keeps
the answers by all of these. Arguments that are not plain strings or integers (a lazy
translation, a model instance) are reversed every time, as by Django.

Installed as a template builtin (``TEMPLATES["OPTIONS"]["builtins"]`` in settings), so
it replaces Django's ``url`` tag in every template, Django's own included; the tag's
syntax, output, escaping and ``as var`` behaviour are Django's
(``tests/admin/test_url_tag.py`` compares them).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Library
from django.template.base import Parser, Token
from django.template.context import Context
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.translation import get_language

register = Library()

#: Reversed URLs kept per process; a full cache is emptied and starts again.
MAX_ENTRIES = 4096
#: Stored for a lookup that failed: ``as var`` gets "" then, as with Django.
_MISSING = object()
_reversed: dict[tuple, Any] = {}
_lock = threading.Lock()


def _plain(value: Any) -> bool:
    # reverse() uses an argument's text; for these the text is the value itself.
    return isinstance(value, str) or type(value) is int


def clear() -> None:
    """Forget every reversal."""
    with _lock:
        _reversed.clear()


@receiver(setting_changed)
def _urlconf_changed(*, setting: str, **kwargs: Any) -> None:
    # As Django's own URL caches: a test that swaps ROOT_URLCONF starts afresh.
    if setting == "ROOT_URLCONF":
        clear()


class CachedURLNode(URLNode):
    def render(self, context: Context) -> str:
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        # As Django's URLNode: the request's current app, else the resolved namespace.
        try:
            current_app = context.request.current_app  # type: ignore[attr-defined]
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace  # type: ignore[attr-defined]
            except AttributeError:
                current_app = None
        url: Any
        if _plain(view_name) and all(map(_plain, args)) and all(map(_plain, kwargs.values())):
            key = (
                str(view_name),
                tuple(map(str, args)),
                tuple(sorted((k, str(v)) for k, v in kwargs.items())),
                current_app,
                get_script_prefix(),
                get_urlconf() or settings.ROOT_URLCONF,
                get_language(),
            )
            url = _reversed.get(key)
            if url is None:
                try:
                    url = reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
                except NoReverseMatch:
                    url = _MISSING
                with _lock:
                    if len(_reversed) >= MAX_ENTRIES:
                        _reversed.clear()
                    _reversed[key] = url
            if url is _MISSING:
                if self.asvar is None:
                    # Reversed again for Django's own error, with its explanation.
                    reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
                url = ""
        else:
            url = ""
            try:
                url = reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
            except NoReverseMatch:
                if self.asvar is None:
                    raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser: Parser, token: Token) -> CachedURLNode:
    """Django's ``{% url %}`` (same syntax), its reversals kept per process."""
    node = django_url(parser, token)
    return CachedURLNode(node.view_name, node.args, node.kwargs, node.asvar)
