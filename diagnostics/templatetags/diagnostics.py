"""Template filters of the diagnostics pages: ``{% load diagnostics %}``."""

from django import template

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
def iso(value):
    """Full-precision ISO timestamp (a session's identity together with its pid)."""
    return value.isoformat() if value is not None else ""
