"""Checks that keep the portal translatable: every shown string marked, every entry translated.

Three checks, run by ``manage.py check_translations`` (``make i18n-check``):

- templates: each template of the portal's apps is parsed by Django's own template
  engine; a text node (outside ``{% translate %}``/``{% blocktranslate %}``) with words
  in it, a title/aria-label/placeholder/alt attribute with words, or a literal string
  passed to a filter (``default:"none"``) is reported;
- Python: an AST walk of the portal's modules reports a plain string literal given to a
  user-facing sink (messages.*, ValidationError, verbose_name, help_text, label,
  description, short_description, a list filter's ``title``, a choices label, a
  context's ``title``) instead of a gettext call;
- catalogs: ``makemessages`` is run into a temporary copy of each app's locale folder;
  the check fails when the result differs from the committed .po (other than the
  POT-Creation-Date), or when an entry is untranslated or fuzzy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

#: The portal's own apps: each has (or gets) a locale/pt_BR/LC_MESSAGES/django.po.
APPS = ("portal", "accounts", "core", "analytics", "audit", "diagnostics", "dbroles")
LANGUAGES = ("pt_BR",)
ROOT = Path(settings.BASE_DIR)

#: Words that stay as they are in every language: names, SQL, units, identifiers.
ALLOWED_WORDS = frozenset(
    """
    PostgreSQL Postgres Django Metabase Cloud SQL Google OAuth Keycloak MCP Codex
    n8n Mautic Typebot JSON CSV UUID URL URLs UTC IP ID IDs PID PIDs XID LSN WAL TOAST
    SELECT INSERT UPDATE DELETE FROM WHERE ALTER SYSTEM GRANT REVOKE ON TO ALL IN CREATE
    DROP VACUUM ANALYZE REINDEX CONCURRENTLY INDEX TABLE SEQUENCE SEQUENCES SCHEMA USAGE
    EXPLAIN RESET ACCESS EXCLUSIVE Run vacuum autovacuum ms kB MB GB TB
    """.split()  # noqa: SIM905 - a word list reads better as words
)
_WORD = re.compile("[A-Za-z][A-Za-z'\u2019]+")


def words(text: str) -> list[str]:
    """The words of ``text`` that a translator would have to translate."""
    text = re.sub(r"&[a-z]+;|&#\d+;", " ", text)
    text = re.sub(r"\b[\w.]*_[\w.]*\b|\b\w+\(\)", " ", text)  # identifiers, calls
    text = re.sub(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b", " ", text)  # CSS classes, slugs
    return [w for w in _WORD.findall(text) if w not in ALLOWED_WORDS]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: not marked for translation: {self.text!r}"


# --- templates ----------------------------------------------------------------------------

_ATTRIBUTE = re.compile(
    r"""\b(?:title|aria-label|placeholder|alt)\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE
)
_SUBMIT_VALUE = re.compile(
    r"""<input\b[^>]*\btype=["'](?:submit|button)["'][^>]*\bvalue=("[^"]*"|'[^']*')""",
    re.IGNORECASE,
)
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _text_node_findings(text: str) -> Iterator[str]:
    text = _COMMENT.sub(" ", _SCRIPT_STYLE.sub(" ", text))
    for match in [*_ATTRIBUTE.finditer(text), *_SUBMIT_VALUE.finditer(text)]:
        value = match.group(1)[1:-1]
        if words(value):
            yield value
    for chunk in _TAG.sub("\n", text).split("\n"):
        chunk = " ".join(chunk.replace(_PLACEHOLDER, " \x00 ").split())
        if words(chunk):
            yield chunk


def _flatten(nodelist: Iterable, variables: list) -> str:
    """The template's markup in document order, each tag, variable or translation as a
    placeholder, so attributes split by ``{% if %}`` come back together."""
    from django.template.base import TextNode, VariableNode
    from django.template.defaulttags import IfNode
    from django.template.loader_tags import BlockNode
    from django.templatetags.i18n import BlockTranslateNode, TranslateNode

    parts = []
    for node in nodelist:
        if isinstance(node, TextNode):
            parts.append(node.s)
        elif isinstance(node, TranslateNode | BlockTranslateNode):
            parts.append(_PLACEHOLDER)
        elif isinstance(node, VariableNode):
            variables.append(node)
            parts.append(_PLACEHOLDER)
        elif isinstance(node, BlockNode) and node.name == "bodyclass":
            parts.append(_PLACEHOLDER)  # CSS class names
        elif isinstance(node, IfNode):
            parts.append(
                _PLACEHOLDER.join(_flatten(n, variables) for _c, n in node.conditions_nodelists)
            )
        else:
            for attr in node.child_nodelists:
                parts.append(_flatten(getattr(node, attr, None) or (), variables))
            parts.append(_PLACEHOLDER)
    return "".join(parts)


_PLACEHOLDER = "\x00"
_LITERAL_ARGUMENT = re.compile(r"""(^|[|:])("[^"]*"|'[^']*')""")


def check_template_source(source: str, name: str = "<template>") -> list[Finding]:
    """Unmarked words in one template's source."""
    from django.template import engines

    engine = engines["django"].engine  # type: ignore[attr-defined]
    template = engine.from_string(source)
    variables: list = []
    flat = _flatten(template.nodelist, variables)
    findings = []
    for text in _text_node_findings(flat):
        first = text.replace(_PLACEHOLDER, " ").split()[0]
        line = source[: max(source.find(first), 0)].count("\n") + 1
        findings.append(Finding(name, line, text.replace(_PLACEHOLDER, "…")))
    for node in variables:
        # Constant filter arguments are resolved at parse time, so the raw token says
        # whether a literal was wrapped in _(): default:"none" vs default:_("none").
        token = node.filter_expression.token
        for match in _LITERAL_ARGUMENT.finditer(token):
            if words(match.group(2)[1:-1]):
                findings.append(Finding(name, node.token.lineno, match.group(2)[1:-1]))
    return findings


def template_files() -> Iterator[Path]:
    for app in APPS:
        yield from sorted((ROOT / app / "templates").rglob("*.html"))


def check_templates() -> list[Finding]:
    findings = []
    for path in template_files():
        findings += check_template_source(path.read_text(), str(path.relative_to(ROOT)))
    return findings


# --- Python --------------------------------------------------------------------------------

#: Keyword arguments whose value a person reads.
SINK_KEYWORDS = frozenset(
    {
        "verbose_name",
        "verbose_name_plural",
        "help_text",
        "label",
        "description",
        "short_description",
        "empty_label",
        "empty_value_display",
        "title",
        "message",
        "search_help_text",
    }
)
#: Class attributes whose value a person reads (ModelAdmin, list filters, Meta, forms).
SINK_ATTRIBUTES = (SINK_KEYWORDS - {"label"}) | {"parameter_title"}
#: Calls whose first positional argument a person reads.
SINK_CALLS = frozenset(
    {"success", "info", "warning", "error", "debug", "add_message", "ValidationError"}
)
MESSAGE_RECEIVERS = frozenset({"messages", "django.contrib.messages"})
#: Context-dict keys shown as page titles.
SINK_KEYS = frozenset({"title", "subtitle", "heading", "display", "invalid", "description"})
#: Class attributes holding (heading, options) pairs: the heading is shown.
FIELDSET_ATTRIBUTES = frozenset({"fieldsets", "add_fieldsets"})
_MARKERS = frozenset(
    {
        "_",
        "gettext",
        "gettext_lazy",
        "ngettext",
        "ngettext_lazy",
        "pgettext",
        "pgettext_lazy",
        "npgettext",
        "npgettext_lazy",
        "format_lazy",
    }
)
_FIELD_CALL = re.compile(r"(Field|ForeignKey|OneToOneField|ManyToManyField)$")


def _is_shown_literal(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(words(node.value))
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        return bool(words(" ".join(str(p) for p in parts)))
    return False


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _literal_text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    return ast.unparse(node)


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self._classes: list[ast.ClassDef] = []

    def flag(self, node: ast.AST) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), _literal_text(node)))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.append(node)
        bases = {_name(b).rsplit(".", 1)[-1] for b in node.bases}
        for statement in node.body:
            if isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                value = statement.value
                if names & SINK_ATTRIBUTES and _is_shown_literal(value):
                    self.flag(value)  # type: ignore[arg-type]
                # TextChoices / IntegerChoices members: NAME = value, "Label"
                if names & FIELDSET_ATTRIBUTES and isinstance(value, ast.List | ast.Tuple):
                    for fieldset in value.elts:
                        heading = getattr(fieldset, "elts", [None])[0]
                        if _is_shown_literal(heading):
                            self.flag(heading)
                is_choices = bool(bases & {"TextChoices", "IntegerChoices", "Choices"})
                label = value.elts[-1] if isinstance(value, ast.Tuple) and value.elts else None
                if is_choices and len(getattr(value, "elts", ())) >= 2 and _is_shown_literal(label):
                    self.flag(label)  # type: ignore[arg-type]
        self.generic_visit(node)
        self._classes.pop()

    def visit_Call(self, node: ast.Call) -> None:
        func = _name(node.func)
        short = func.rsplit(".", 1)[-1]
        if short in _MARKERS:
            return  # its argument is the msgid; nothing inside is a sink
        receiver = func.rsplit(".", 1)[0] if "." in func else ""
        if node.args and (
            (short == "ValidationError")
            or (short in SINK_CALLS and receiver in MESSAGE_RECEIVERS)
            or short == "message_user"
        ):
            # messages.error(request, text), add_message(request, level, text),
            # self.message_user(request, text), ValidationError(text)
            index = {"ValidationError": 0, "add_message": 2}.get(short, 1)
            if len(node.args) > index and _is_shown_literal(node.args[index]):
                self.flag(node.args[index])
        if short == "format_html":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and words(_TAG.sub(" ", str(first.value))):
                self.flag(first)
            for argument in node.args[1:]:
                if _is_shown_literal(argument):
                    self.flag(argument)
        related = short.endswith(("ForeignKey", "OneToOneField", "ManyToManyField"))
        is_field = _FIELD_CALL.search(short) and not related
        if is_field and node.args and _is_shown_literal(node.args[0]):
            self.flag(node.args[0])
        for keyword in node.keywords:
            if keyword.arg in SINK_KEYWORDS and _is_shown_literal(keyword.value):
                self.flag(keyword.value)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # A list filter's lookups(): (value, label) pairs; the label is shown.
        if node.name == "lookups":
            for returned in ast.walk(node):
                if isinstance(returned, ast.Return) and isinstance(returned.value, ast.List):
                    for pair in returned.value.elts:
                        label = getattr(pair, "elts", [None, None])[-1]
                        if _is_shown_literal(label):
                            self.flag(label)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and key.value in SINK_KEYS
                and _is_shown_literal(value)
            ):
                self.flag(value)
        self.generic_visit(node)


def check_python_source(source: str, name: str = "<module>") -> list[Finding]:
    visitor = _Visitor(name)
    visitor.visit(ast.parse(source, name))
    return visitor.findings


def python_files() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or "formats" in parts or path.name == "i18n_check.py":
                continue
            if path.name.startswith("settings"):
                continue
            yield path


def check_python() -> list[Finding]:
    findings = []
    for path in python_files():
        findings += check_python_source(path.read_text(), str(path.relative_to(ROOT)))
    return findings


# --- catalogs --------------------------------------------------------------------------------


_DATE_LINE = re.compile(r'^"POT-Creation-Date: .*\\n"$', re.MULTILINE)


def catalog_path(app: str, language: str) -> Path:
    return ROOT / app / "locale" / language / "LC_MESSAGES" / "django.po"


def run_makemessages(app_dir: Path, language: str) -> None:
    """makemessages for one app, in ``app_dir`` (the app itself or a copy of it).

    makemessages works on the current directory; it is restored afterwards.
    """
    from django.core.management import call_command

    previous = Path.cwd()
    os.chdir(app_dir)
    try:
        call_command(
            "makemessages", locale=[language], no_obsolete=True, no_location=True, verbosity=0
        )
    finally:
        os.chdir(previous)


def catalog_problems(po_text: str, path: str) -> list[str]:
    """Untranslated and fuzzy entries of one .po file."""
    import polib

    problems = []
    for entry in polib.pofile(po_text):
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"{path}: fuzzy: {entry.msgid!r}")
        elif not entry.translated():
            problems.append(f"{path}: untranslated: {entry.msgid!r}")
    return problems


def check_catalogs() -> list[str]:
    problems: list[str] = []
    for app in APPS:
        for language in LANGUAGES:
            committed = catalog_path(app, language)
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / app
                shutil.copytree(
                    ROOT / app,
                    copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.mo"),
                    symlinks=True,
                )
                (copy / "locale").mkdir(exist_ok=True)
                run_makemessages(copy, language)
                fresh = copy / committed.relative_to(ROOT / app)
                fresh_text = fresh.read_text() if fresh.exists() else ""
            committed_text = committed.read_text() if committed.exists() else ""
            if _DATE_LINE.sub("", fresh_text) != _DATE_LINE.sub("", committed_text):
                problems.append(
                    f"{committed.relative_to(ROOT)}: out of date with the sources "
                    "(run `make translations`, then translate what it adds)"
                )
            if committed_text:
                problems += catalog_problems(committed_text, str(committed.relative_to(ROOT)))
    return [p for p in problems if p]
