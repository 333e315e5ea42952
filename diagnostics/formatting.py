"""Human-readable numbers for the diagnostics pages and charts."""

from __future__ import annotations

import re
from typing import overload

from django.utils.formats import number_format


def bytes_label(value: float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return (
                f"{number_format(size, 0)} {unit}"
                if unit == "B"
                else f"{number_format(size, 1)} {unit}"
            )
        size /= 1024
    return f"{number_format(size, 1)} TB"  # pragma: no cover - loop always returns


def duration_label(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{number_format(seconds * 1000, 0)} ms"
    if seconds < 60:
        return f"{number_format(seconds, 1)} s"
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
        return f"{number_format(value, 2)} ms"
    if value < 1000:
        return f"{number_format(value, 0)} ms" if value >= 10 else f"{number_format(value, 1)} ms"
    return duration_label(value / 1000)


def count_label(value: float | None) -> str:
    if value is None:
        return "—"
    value = float(value)
    for limit, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e4, " k")):
        if abs(value) >= limit:
            return f"{number_format(round(value / limit, 1), 1)}{suffix}".replace(
                number_format(0.0, 1)[1:] + suffix, suffix
            )
    return number_format(round(value), force_grouping=True)


def percent_label(ratio: float | None, digits: int = 1) -> str:
    if ratio is None:
        return "—"
    return f"{number_format(ratio * 100, digits)} %"


# Statement texts can carry credentials (ALTER ROLE ... PASSWORD '...', a dblink or
# postgres_fdw connection string): they are masked wherever a text is shown or stored.
_SECRETS = (
    re.compile(r"(\bPASSWORD\s+)'(?:[^']|'')*'", re.IGNORECASE),
    re.compile(r"(\bpassword\s*=\s*)('(?:[^']|'')*'|[^\s']+)", re.IGNORECASE),
)


@overload
def mask_secrets(text: str) -> str: ...
@overload
def mask_secrets(text: None) -> None: ...
def mask_secrets(text: str | None) -> str | None:
    """The statement with password literals replaced by ``'***'``."""
    if not text:
        return text
    text = _SECRETS[0].sub(r"\1'***'", text)
    return _SECRETS[1].sub(r"\1***", text)
