"""How long texts, JSON and SQL are shown on admin pages: escaped, readable, bounded."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from html import escape as _escape  # Django's escape() is this, less its lazy-text check
from typing import Any

import sqlparse
from django.conf import settings
from django.contrib.admin.utils import quote
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.formats import get_format, number_format
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext, ngettext


@functools.cache
def _reversed(name: str, args: tuple[str, ...], prefix: str, urlconf: str | None) -> str:
    # The script prefix is part of the key: reverse() puts it in front of the path.
    return reverse(name, args=list(args), urlconf=urlconf)


def changelist_url(app_label: str, model_name: str) -> str:
    """The admin list of a model, reversed once per model (the dashboard links each
    of its figures to a filtered list: dozens of links a view)."""
    return _reversed(
        f"admin:{app_label}_{model_name}_changelist", (), get_script_prefix(), get_urlconf()
    )


def change_url(app_label: str, model_name: str, pk: Any) -> str:
    """The admin change page of one object, as ``reverse`` and the admin's ``quote``
    make it; reversed once per model and reused (a list page shows fifty rows).

    Raises ``NoReverseMatch`` for a model the admin does not register.
    """
    pattern = _reversed(
        f"admin:{app_label}_{model_name}_change", ("__pk__",), get_script_prefix(), get_urlconf()
    )
    return pattern.replace("__pk__", quote(str(pk)))


StrOrPromise = str | Promise

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
    """SQL as it ran, in a ``<pre>`` block.

    Text that has line breaks is shown verbatim. A one-line statement is broken into
    lines by sqlparse with case left alone: the formatter only changes whitespace
    (a word it takes for a keyword, such as a column ``plan``, keeps its case).
    """
    if not sql:
        return format_html('<span class="portal-muted">{}</span>', "—")
    text, omitted = _cut(sql, limit)
    if "\n" not in text.strip():
        text = sqlparse.format(text, reindent=True, keyword_case=None, identifier_case=None)
    return format_html(
        '<pre class="portal-pre portal-code portal-sql">{}</pre>{}',
        text.strip(),
        _cut_note(omitted),
    )


def result_table(value: Any, *, max_rows: int = 200) -> SafeString:
    """A sandbox result: ``{"columns": [...], "rows": [[...], ...]}`` as a table (the first
    ``max_rows`` rows); anything else as pretty JSON."""
    if not (
        isinstance(value, dict)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("rows"), list)
        and all(isinstance(r, list) for r in value["rows"])
    ):
        return pretty_json(value)
    columns, rows = value["columns"], value["rows"]
    head = format_html_join("", '<th scope="col">{}</th>', ((str(c),) for c in columns))

    def cell(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((cell(v),) for v in row)),)
            for row in rows[:max_rows]
        ),
    )
    note = ""
    if len(rows) > max_rows:
        hidden = len(rows) - max_rows
        note = format_html(
            '<p class="portal-cut">{}</p>',
            ngettext("… %(count)s more row not shown.", "… %(count)s more rows not shown.", hidden)
            % {"count": number_format(hidden, force_grouping=True)},
        )
    others = {k: v for k, v in value.items() if k not in {"columns", "rows"}}
    extra = pretty_json(others) if others else ""
    return format_html(
        '<div class="portal-scroll"><table class="portal-table portal-result">'
        "<thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>{}{}",
        head,
        body,
        note,
        extra,
    )


#: Texts longer than this are folded on the detail page (a summary line opens them).
FOLD_CHARS = 4_000
_TRACEBACK_START = "Traceback (most recent call last):"


def _split_tracebacks(prose: str) -> list[tuple[str, str]]:
    """Prose with Python tracebacks (outside code fences) set apart as code."""
    if _TRACEBACK_START not in prose:
        return [("prose", prose)]  # most texts: no line by line walk
    parts: list[tuple[str, str]] = []
    lines = prose.split("\n")
    buffer: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == _TRACEBACK_START:
            if buffer:
                parts.append(("prose", "\n".join(buffer)))
                buffer = []
            block = [lines[i]]
            i += 1
            # Indented frame lines, then the unindented exception line.
            while i < len(lines) and lines[i].startswith((" ", "\t")):
                block.append(lines[i])
                i += 1
            if i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            parts.append(("traceback", "\n".join(block)))
            continue
        buffer.append(lines[i])
        i += 1
    if buffer:
        parts.append(("prose", "\n".join(buffer)))
    return parts


def readable_text(
    text: str | None, *, anchor: str = "", jump: tuple[str, StrOrPromise] | None = None
) -> SafeString:
    """A prompt or response: whitespace kept, fenced ``` code blocks and tracebacks set
    apart in code type, a text that is a JSON document indented.

    Shown whole (a reader needs the full text), but folded behind a summary line when
    longer than ``FOLD_CHARS``; ``jump`` is an optional (anchor, label) link placed at
    the top (e.g. from a long prompt to the response); ``anchor`` the id of this text.
    Everything is escaped.
    """
    if text is None:
        return format_html('<span class="portal-muted">{}</span>', "—")
    stripped = text.strip()
    document = None
    if stripped[:1] in {"{", "["}:
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None
    body = pretty_json(document) if isinstance(document, dict | list) else _text_blocks(text)
    jump_link = format_html('<a class="portal-jump" href="#{}">{}</a>', *jump) if jump else ""
    opening = (
        format_html('<div class="portal-long" id="{}">', anchor)
        if anchor
        else mark_safe('<div class="portal-long">')
    )
    if len(text) <= FOLD_CHARS:
        return format_html("{}{}{}</div>", opening, jump_link, body)
    summary = format_html(
        '<summary>{} <span class="portal-muted">({})</span></summary>',
        preview(text, 140),
        ngettext("%(count)s character — show all", "%(count)s characters — show all", len(text))
        % {"count": number_format(len(text), force_grouping=True)},
    )
    return format_html(
        '{}{}<details class="portal-fold">{}{}</details></div>',
        opening,
        jump_link,
        summary,
        body,
    )


def _text_blocks(text: str) -> SafeString:
    # Built from escaped pieces by plain string joins: an execution's text is dozens of
    # blocks, and a format_html() per block (each argument through the lazy-string
    # check of Django's escape()) was a quarter of a millisecond per response.
    out = ['<div class="portal-text">']
    pos = 0
    for match in _FENCE.finditer(text):
        if match.start() > pos:
            _prose_blocks(text[pos : match.start()], out)
        _code_block(match.group(1), match.group(2).rstrip("\n"), out)
        pos = match.end()
    if pos < len(text):
        _prose_blocks(text[pos:], out)
    out.append("</div>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of the text is escaped


def _prose_blocks(prose: str, out: list[str]) -> None:
    for kind, body in _split_tracebacks(prose):
        if kind == "traceback":
            _code_block("traceback", body, out, css=" portal-traceback")
        elif body.strip():
            out.append('<div class="portal-prose">')
            _inline_code(body.strip("\n"), out)
            out.append("</div>")


def _code_block(lang: str, body: str, out: list[str], css: str = "") -> None:
    out.append('<div class="portal-codeblock">')
    if lang:
        out.append(f'<span class="portal-lang">{_escape(lang)}</span>')
    out.append(f'<pre class="portal-pre portal-code{css}"><code>{_escape(body)}</code></pre></div>')


def _inline_code(text: str, out: list[str]) -> None:
    """Escape ``text``, setting `backticked` spans in code type."""
    # split() with one group alternates: text, code, text, code, ...
    for i, piece in enumerate(_INLINE_CODE.split(text)):
        out.append(f"<code>{_escape(piece)}</code>" if i % 2 else _escape(piece))


def preview(text: str | None, length: int = 90) -> str:
    """One line of a long text (code fences dropped)."""
    if not text:
        return ""
    line = " ".join(_FENCE_MARK.sub(" ", text).split())
    return line if len(line) <= length else line[: length - 1] + "…"


def _one_decimal(value: float) -> str:
    """``value`` with one decimal in the language's format, rounded (Django's
    number_format cuts a float's digits instead): ``number_format(round(value, 1), 1)``,
    with the decimal separator looked up once per language (a session's timeline and
    the dashboard's charts format a hundred of these)."""
    value = round(value, 1)
    if not 0 <= value < 1e15 or settings.USE_THOUSAND_SEPARATOR:
        return number_format(value, 1)
    return f"{value:.1f}".replace(".", _decimal_separator(get_language()))


@functools.lru_cache(maxsize=64)
def _decimal_separator(language: str | None) -> str:
    return str(get_format("DECIMAL_SEPARATOR"))


def duration_ms(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value} ms"
    if value < 60_000:
        return f"{_one_decimal(value / 1000)} s"
    if value < 3_600_000:
        return f"{_one_decimal(value / 60_000)} min"
    if value < 86_400_000:
        return f"{_one_decimal(value / 3_600_000)} h"
    return gettext("%(count)s days") % {"count": _one_decimal(value / 86_400_000)}


@functools.lru_cache(maxsize=64)
def _grouping(language: str | None) -> tuple[str, Any]:
    return str(get_format("THOUSAND_SEPARATOR")), get_format("NUMBER_GROUPING")


def grouped(value: int) -> str:
    """``number_format(value, force_grouping=True)`` for an int, with the language's
    separator looked up once per language: a list page formats a hundred numbers and
    ``number_format`` looks up three formats for each."""
    separator, grouping = _grouping(get_language())
    if grouping != 3 or isinstance(value, bool) or not isinstance(value, int):
        return number_format(value, force_grouping=True)
    return f"{value:,}".replace(",", separator)


def compact(value: int) -> str:
    """12,345 / 1.2 M / 3.4 B: a big number that fits a dashboard card."""
    if value < 1_000_000:
        return grouped(value)
    if value < 1_000_000_000:
        # Translators: millions, abbreviated to fit a dashboard card.
        return gettext("%(count)s M") % {"count": _one_decimal(value / 1_000_000)}
    # Translators: billions, abbreviated to fit a dashboard card.
    return gettext("%(count)s B") % {"count": _one_decimal(value / 1_000_000_000)}


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


def status_badge(status: str | None, label: StrOrPromise | None = None) -> SafeString:
    """A coloured label for a session status (unknown statuses are grey): ``label`` (the
    status's name in the reader's language) when known, the stored value otherwise."""
    tone = STATUS_TONES.get((status or "").lower(), "muted")
    if label is None or not status:
        return format_html('<span class="portal-badge portal-{}">{}</span>', tone, status or "—")
    return format_html(
        '<span class="portal-badge portal-{}" title="{}">{}</span>', tone, status, label
    )


def related_links(links: Sequence[tuple[StrOrPromise, str | None]]) -> SafeString:
    """Links to related rows, each a filtered list or one object's page (never an inline
    of unbounded size). A link without a URL is shown as plain text."""
    if not links:
        return format_html('<span class="portal-muted">{}</span>', "—")
    items = format_html_join(
        "",
        "<li>{}</li>",
        (
            (format_html('<a href="{}">{}</a>', url, label) if url else label,)
            for label, url in links
        ),
    )
    return format_html('<ul class="portal-related">{}</ul>', items)
