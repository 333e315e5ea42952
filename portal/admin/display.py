"""How long texts, JSON and SQL are shown on admin pages: escaped, readable, bounded."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlparse
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

#: Beyond this many characters a JSON or SQL display is cut (with a note): a
#: multi-megabyte value would make the page unusable, and CSV export has it whole.
MAX_DISPLAY_CHARS = 200_000

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_FENCE_MARK = re.compile(r"```[\w#+.-]*")
_FENCE = re.compile(r"```([\w#+.-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _cut(text: str, limit: int) -> tuple[str, int]:
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def _cut_note(omitted: int) -> SafeString | str:
    if not omitted:
        return ""
    return format_html(
        '<p class="portal-cut">{}</p>',
        gettext("… %(count)s more characters not shown.")
        % {"count": number_format(omitted, force_grouping=True)},
    )


def pretty_json(value: Any, *, limit: int = MAX_DISPLAY_CHARS) -> SafeString:
    """Indented JSON in a ``<pre>`` block."""
    if value is None:
        return format_html('<span class="portal-muted">{}</span>', "—")
    text, omitted = _cut(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True), limit)
    return format_html('<pre class="portal-pre portal-json">{}</pre>{}', text, _cut_note(omitted))


def formatted_sql(sql: str | None, *, limit: int = MAX_DISPLAY_CHARS) -> SafeString:
    """SQL re-indented with sqlparse (keywords upper-cased) in a ``<pre>`` block."""
    if not sql:
        return format_html('<span class="portal-muted">{}</span>', "—")
    text, omitted = _cut(sql, limit)
    pretty = sqlparse.format(text, reindent=True, keyword_case="upper", strip_whitespace=False)
    return format_html(
        '<pre class="portal-pre portal-code portal-sql">{}</pre>{}',
        pretty.strip(),
        _cut_note(omitted),
    )


def readable_text(text: str | None) -> SafeString:
    """A prompt or response: whitespace kept, fenced ``` code blocks set apart.

    Shown whole (a reader needs the full text); everything is escaped.
    """
    if text is None:
        return format_html('<span class="portal-muted">{}</span>', "—")
    parts: list[tuple[str, str, str]] = []
    pos = 0
    for match in _FENCE.finditer(text):
        if match.start() > pos:
            parts.append(("prose", "", text[pos : match.start()]))
        parts.append(("code", match.group(1), match.group(2).rstrip("\n")))
        pos = match.end()
    if pos < len(text):
        parts.append(("prose", "", text[pos:]))
    blocks = []
    for kind, lang, body in parts:
        if kind == "code":
            blocks.append(
                format_html(
                    '<div class="portal-codeblock">{}<pre class="portal-pre portal-code">'
                    "<code>{}</code></pre></div>",
                    format_html('<span class="portal-lang">{}</span>', lang) if lang else "",
                    body,
                )
            )
        elif body.strip():
            blocks.append(
                format_html('<div class="portal-prose">{}</div>', _inline_code(body.strip("\n")))
            )
    return format_html(
        '<div class="portal-text">{}</div>', format_html_join("", "{}", ((b,) for b in blocks))
    )


def _inline_code(text: str) -> SafeString:
    """Escape ``text``, setting `backticked` spans in code type."""
    pieces = _INLINE_CODE.split(text)
    # split() with one group alternates: text, code, text, code, ...
    return format_html_join(
        "",
        "{}",
        ((format_html("<code>{}</code>", p) if i % 2 else p,) for i, p in enumerate(pieces)),
    )


def preview(text: str | None, length: int = 90) -> str:
    """One line of a long text (code fences dropped)."""
    if not text:
        return ""
    line = " ".join(_FENCE_MARK.sub(" ", text).split())
    return line if len(line) <= length else line[: length - 1] + "…"


def duration_ms(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    if value < 3_600_000:
        return f"{value / 60_000:.1f} min"
    if value < 86_400_000:
        return f"{value / 3_600_000:.1f} h"
    return f"{value / 86_400_000:.1f} days"


def compact(value: int) -> str:
    """12,345 / 1.2 M / 3.4 B: a big number that fits a dashboard card."""
    if value < 1_000_000:
        return number_format(value, force_grouping=True)
    if value < 1_000_000_000:
        return f"{number_format(value / 1_000_000, 1)} M"
    return f"{number_format(value / 1_000_000_000, 1)} B"


STATUS_TONES = {
    "completed": "ok",
    "succeeded": "ok",
    "success": "ok",
    "done": "ok",
    "active": "info",
    "running": "info",
    "in_progress": "info",
    "pending": "info",
    "queued": "info",
    "failed": "bad",
    "error": "bad",
    "errored": "bad",
    "timeout": "bad",
    "timed_out": "bad",
    "cancelled": "muted",
    "canceled": "muted",
    "expired": "muted",
}


def status_badge(status: str | None) -> SafeString:
    """A coloured label for a session status (unknown statuses are grey)."""
    tone = STATUS_TONES.get((status or "").lower(), "muted")
    return format_html('<span class="portal-badge portal-{}">{}</span>', tone, status or "—")
