"""Human-readable numbers for the diagnostics pages and charts, in the active
language's separators (``1,234.5`` in English, ``1.234,5`` in Portuguese)."""

from __future__ import annotations

from django.utils.formats import get_format, number_format
from django.utils.translation import gettext


def _fixed(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals in the active language's separators.
    (Django's number_format cuts the decimals it does not show; it does not round.)"""
    return number_format(round(value, digits), digits)


def bytes_label(value: float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{_fixed(size, 0 if unit == 'B' else 1)} {unit}"
        size /= 1024
    return f"{_fixed(size, 1)} TB"  # pragma: no cover - loop always returns


def duration_label(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{_fixed(seconds * 1000, 0)} ms"
    if seconds < 60:
        return f"{_fixed(seconds, 1)} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ms_label(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{_fixed(value, 2)} ms"
    if value < 1000:
        return f"{_fixed(value, 0 if value >= 10 else 1)} ms"
    return duration_label(value / 1000)


# Labels keep three significant digits above 10,000 ("420 k", "1.25 M", "42.5 k"), so
# a label read back is within 0.5 % of the number; below that the number is exact.
_SCALES = ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k"))
EXACT_BELOW = 10_000


def _digits(scaled: float) -> int:
    size = abs(scaled)
    return 2 if size < 10 else 1 if size < 100 else 0


def _three_digits(scaled: float) -> str:
    digits = _digits(scaled)
    text = _fixed(scaled, digits)
    if digits:
        text = text.rstrip("0").rstrip(str(get_format("DECIMAL_SEPARATOR")))
    return text


def count_label(value: float | None) -> str:
    """A count for people: exact below 10,000, else three significant digits and a unit."""
    if value is None:
        return "—"
    value = float(value)
    if abs(value) < EXACT_BELOW:
        return number_format(round(value), 0, force_grouping=True)
    # Pick the largest unit that keeps the rounded mantissa at or above 1; a mantissa
    # that rounds up to 1000 ("1000 k") moves to the next unit ("1 M").
    for index, (limit, suffix) in enumerate(_SCALES):
        if abs(value) >= limit or index == len(_SCALES) - 1:
            scaled = value / limit
            if abs(round(scaled, _digits(scaled))) >= 1000 and index > 0:
                bigger, bigger_suffix = _SCALES[index - 1]
                return _three_digits(value / bigger) + bigger_suffix
            return _three_digits(scaled) + suffix
    raise AssertionError("unreachable")  # pragma: no cover - the last unit always returns


def number_label(value: float | None) -> str:
    """An exact integer with thousands separators (sequence positions and limits)."""
    if value is None:
        return "—"
    return number_format(int(value), 0, force_grouping=True)


def percent_label(ratio: float | None, digits: int = 1) -> str:
    """A ratio as a percentage that never rounds a part up to the whole: 0.99997 is
    "> 99.9 %", not "100.0 %", and a tiny positive share is "< 0.1 %", not "0.0 %"."""
    if ratio is None:
        return "—"
    shown = round(ratio * 100, digits)
    step = 10.0**-digits
    if 0 < ratio < 1 and shown >= 100:
        return f"> {_fixed(100 - step, digits)} %"
    if ratio > 0 and shown == 0:
        return f"< {_fixed(step, digits)} %"
    return f"{_fixed(ratio * 100, digits)} %"


def values_left_label(left: int | None) -> str:
    """How many more values a sequence can hand out."""
    if left is None:
        return "—"
    if left <= 0:
        return gettext("none left")
    return gettext("%(count)s left") % {"count": count_label(left)}
