"""Human-readable numbers for the diagnostics pages and charts."""

from __future__ import annotations


def bytes_label(value: float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - loop always returns


def duration_label(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
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
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    return duration_label(value / 1000)


# Labels keep three significant digits above 10,000 ("420 k", "1.25 M", "42.5 k"), so
# a label read back is within 0.5 % of the number; below that the number is exact.
_SCALES = ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k"))
EXACT_BELOW = 10_000


def _three_digits(scaled: float) -> str:
    size = abs(scaled)
    text = f"{scaled:.2f}" if size < 10 else f"{scaled:.1f}" if size < 100 else f"{scaled:.0f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def count_label(value: float | None) -> str:
    """A count for people: exact below 10,000, else three significant digits and a unit."""
    if value is None:
        return "—"
    value = float(value)
    if abs(value) < EXACT_BELOW:
        return f"{value:,.0f}"
    # Pick the largest unit that keeps the rounded mantissa at or above 1; a mantissa
    # that rounds up to 1000 ("1000 k") moves to the next unit ("1 M").
    for index, (limit, suffix) in enumerate(_SCALES):
        if abs(value) >= limit or index == len(_SCALES) - 1:
            text = _three_digits(value / limit)
            if abs(float(text)) >= 1000 and index > 0:
                bigger, bigger_suffix = _SCALES[index - 1]
                return _three_digits(value / bigger) + bigger_suffix
            return text + suffix
    raise AssertionError("unreachable")  # pragma: no cover - the last unit always returns


def number_label(value: float | None) -> str:
    """An exact integer with thousands separators (sequence positions and limits)."""
    if value is None:
        return "—"
    return f"{int(value):,}"


def percent_label(ratio: float | None, digits: int = 1) -> str:
    """A ratio as a percentage that never rounds a part up to the whole: 0.99997 is
    "> 99.9 %", not "100.0 %", and a tiny positive share is "< 0.1 %", not "0.0 %"."""
    if ratio is None:
        return "—"
    text = f"{ratio * 100:.{digits}f}"
    step = 10.0**-digits
    if 0 < ratio < 1 and float(text) >= 100:
        return f"> {100 - step:.{digits}f} %"
    if ratio > 0 and float(text) == 0:
        return f"< {step:.{digits}f} %"
    return f"{text} %"


def values_left_label(left: int | None) -> str:
    """How many more values a sequence can hand out."""
    if left is None:
        return "—"
    if left <= 0:
        return "none left"
    return f"{count_label(left)} left" if left != 1 else "1 left"
