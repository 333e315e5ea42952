"""The list columns' number formatting against Django's own ``number_format``.

``grouped`` looks the separator up once per language instead of once per number; the
independent answer is ``number_format(..., force_grouping=True)`` in the same language,
over any integer (hypothesis) and languages with other separators and groupings.
"""

from django.utils import translation
from django.utils.formats import number_format
from hypothesis import given
from hypothesis import strategies as st

from portal.admin.display import grouped

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
