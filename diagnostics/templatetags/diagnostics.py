"""Template filters of the diagnostics pages: ``{% load diagnostics %}``."""

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from diagnostics import formatting
from diagnostics.redaction import redact_sql

register = template.Library()

register.filter("bytes", formatting.bytes_label)
register.filter("duration", formatting.duration_label)
register.filter("ms", formatting.ms_label)
register.filter("count", formatting.count_label)
register.filter("percent", formatting.percent_label)
register.filter("number", formatting.number_label)
register.filter("values_left", formatting.values_left_label)
register.filter("masked", redact_sql)


@register.filter
def server_words(message, detail):
    """``message`` with the server's own words in it (PostgreSQL's error text) quoted as
    data in the server's language, so readers (and screen readers) tell them apart."""
    text = conditional_escape(message)
    if not detail:
        return text
    quoted = conditional_escape(detail)
    if quoted not in text:
        return text
    return mark_safe(  # noqa: S308 - both parts escaped above
        text.replace(quoted, f'<q class="diag-server" lang="en">{quoted}</q>', 1)
    )


@register.filter
def iso(value):
    """Full-precision ISO timestamp (a session's identity together with its pid)."""
    return value.isoformat() if value is not None else ""
