"""The display helpers against independent answers.

``grouped`` looks the separator up once per language instead of once per number; the
independent answer is ``number_format(..., force_grouping=True)`` in the same language,
over any integer (hypothesis) and languages with other separators and groupings.

``readable_text`` builds its HTML by string joins, not ``format_html``: read back by
Python's HTML parser, any text (hypothesis, over the characters that matter: markup,
entities, backticks, fences, traceback openings) must come out as the same characters
in the same order, inside no element but the display's own.
"""

import json
from html.parser import HTMLParser

from django.utils import translation
from django.utils.formats import number_format
from hypothesis import assume, given
from hypothesis import strategies as st

from portal.admin.display import FOLD_CHARS, grouped, readable_text

#: English and Portuguese (the portal's), German (dot), French (narrow space), Hindi
#: (grouping 3, 2: Django's fallback path).
LANGUAGES = ["en", "pt-br", "de", "fr", "hi"]


@given(
    value=st.integers(min_value=-(10**15), max_value=10**15), language=st.sampled_from(LANGUAGES)
)
def test_grouped_is_number_format_with_grouping(value, language):
    with translation.override(language):
        assert grouped(value) == number_format(value, force_grouping=True)


def test_languages_differ():
    # So the property above compares texts that really depend on the language.
    texts = set()
    for language in LANGUAGES:
        with translation.override(language):
            texts.add(grouped(12_345_678))
    assert len(texts) >= 3


@given(
    value=st.floats(min_value=0, max_value=10**13, allow_nan=False, allow_infinity=False)
    | st.integers(min_value=0, max_value=10**6).map(lambda n: n / 20),  # the .x5 halves
    language=st.sampled_from(LANGUAGES),
)
def test_one_decimal_is_number_format_of_the_rounded_value(value, language):
    from portal.admin.display import _one_decimal

    with translation.override(language):
        assert _one_decimal(value) == number_format(round(value, 1), 1)


#: The elements and classes readable_text writes; anything else came from the text.
OWN_MARKUP = {
    "div": {"portal-long", "portal-text", "portal-prose", "portal-codeblock"},
    "pre": {"portal-pre", "portal-code", "portal-traceback"},
    "code": set(),
    "span": {"portal-lang"},
    "a": {"portal-jump"},
}


class _Reader(HTMLParser):
    """The text a reader sees, and every element with its classes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.elements: list[tuple[str, set[str]]] = []
        self._label: list[str] | None = None
        self._pending_label = ""

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        self.elements.append((tag, classes))
        if tag == "span" and "portal-lang" in classes:
            self._label = []
        if tag == "pre":
            # A fenced block's language label is the text's own (```sql); a
            # traceback's label is the display's.
            if "portal-traceback" not in classes:
                self.text.append(self._pending_label)
            self._pending_label = ""

    def handle_endtag(self, tag):
        if tag == "span" and self._label is not None:
            self._pending_label, self._label = "".join(self._label), None

    def handle_data(self, data):
        (self._label if self._label is not None else self.text).append(data)


def _visible(text: str) -> str:
    # Whitespace is the display's to arrange and fences' backticks are markup.
    return "".join(c for c in text if not c.isspace() and c != "`")


_TEXT_PIECES = st.lists(
    st.sampled_from(
        [
            "<b>",
            "</div>",
            "<script>alert(1)</script>",
            "&amp;",
            "&lt;",
            "&",
            '"',
            "'",
            "`",
            "```",
            "```sql\n",
            "```py \n",
            "\n",
            "\r\n",
            " ",
            "\t",
            '  File "x"',
            "Traceback (most recent call last):",
            "ValueError: x",
            "é",
            "\x00",
            "{",
            "[",
            "}",
        ]
    )
    | st.text(max_size=12),
    max_size=40,
).map("".join)


@given(text=_TEXT_PIECES)
def test_readable_text_keeps_every_character_and_only_its_own_markup(text):
    try:
        json.loads(text.strip())
        assume(False)  # a JSON document is shown re-indented, not as typed
    except ValueError:
        pass
    assume(len(text) <= FOLD_CHARS)
    reader = _Reader()
    reader.feed(str(readable_text(text, anchor="portal-x")))
    reader.close()
    assert _visible("".join(reader.text)) == _visible(text)
    for tag, classes in reader.elements:
        assert tag in OWN_MARKUP, (tag, text)
        assert classes <= OWN_MARKUP[tag], (tag, classes, text)


def test_readable_text_sets_code_and_tracebacks_apart():
    text = (
        "Run `make test`:\n```sql\nSELECT 1 < 2;\n```\nthen\n"
        "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\nafter"
    )
    reader = _Reader()
    reader.feed(str(readable_text(text)))
    assert [tag for tag, _ in reader.elements].count("pre") == 2
    assert ("pre", {"portal-pre", "portal-code", "portal-traceback"}) in reader.elements
    assert ("code", set()) in reader.elements  # `make test`
    assert "SELECT 1 < 2;" in "".join(reader.text)
