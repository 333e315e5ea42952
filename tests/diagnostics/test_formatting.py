"""The one formatting layer of the diagnostics pages: every label, read back, is within
rounding of the number it shows (property-based over the whole integer range)."""

import re

from hypothesis import example, given
from hypothesis import strategies as st

from diagnostics import formatting

UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
LABEL = re.compile(r"^(-?[\d,]+(?:\.\d+)?)(?: ([kMGT]))?$")


def read_back(label: str) -> float:
    match = LABEL.match(label)
    assert match, f"not a count label: {label!r}"
    return float(match.group(1).replace(",", "")) * UNITS[match.group(2) or ""]


@given(st.integers(min_value=-(10**16), max_value=10**16))
@example(420_000)
@example(500_000)
@example(10_000)
@example(999_999)
@example(999_500)
@example(9_999)
@example(2**31 - 1)
def test_any_integer_reads_back_within_half_a_percent(n):
    label = formatting.count_label(n)
    back = read_back(label)
    if abs(n) < formatting.EXACT_BELOW:
        assert back == n, label
    else:
        assert abs(back - n) <= 0.005 * abs(n), (n, label)
        match = LABEL.match(label)
        assert match is not None
        mantissa = float(match.group(1).replace(",", ""))
        assert abs(mantissa) >= 1, (n, label)
        assert abs(mantissa) < 1000 or match.group(2) == "T", (n, label)


def test_the_counts_the_pages_showed_ten_times_too_small():
    assert formatting.count_label(420_000) == "420 k"
    assert formatting.count_label(500_000) == "500 k"
    assert formatting.count_label(12_345) == "12.3 k"
    assert formatting.count_label(999_999) == "1 M"
    assert formatting.count_label(1_250_000) == "1.25 M"


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_a_percentage_never_claims_all_or_nothing_it_is_not(ratio):
    label = formatting.percent_label(ratio)
    if ratio < 1:
        assert label != "100.0 %"
    if ratio > 0:
        assert label != "0.0 %"
    number = float(label.strip("<> %"))
    assert abs(number - ratio * 100) <= 0.1 + 1e-9


def test_values_left_and_exact_numbers():
    assert formatting.values_left_label(647) == "647 left"
    assert formatting.values_left_label(0) == "none left"
    assert formatting.number_label(2_147_483_647) == "2,147,483,647"
    assert formatting.percent_label(1 - 647 / 2**31) == "> 99.9 %"


def read_back_ptbr(label: str) -> float:
    """A pt-BR label: '.' groups thousands, ',' is the decimal separator."""
    return read_back(label.replace(".", "").replace(",", "."))


@given(
    st.integers(min_value=-(10**16), max_value=10**16),
    st.floats(min_value=0, max_value=1, allow_nan=False),
)
@example(999_500, 0.99)
@example(1_234_567, 0.5)
@example(5_432, 0.12345)
def test_in_portuguese_the_same_numbers_read_back_with_its_separators(n, ratio):
    """Same bounds in pt-BR ('1,23 M', '5.432', '99,0 %'): the language changes the
    separators, never the value."""
    from django.utils import translation

    with translation.override("pt-br"):
        label = formatting.count_label(n)
        percent = formatting.percent_label(ratio)
    back = read_back_ptbr(label)
    if abs(n) < formatting.EXACT_BELOW:
        assert back == n, label
    else:
        assert abs(back - n) <= 0.005 * abs(n), (n, label)
    number = float(percent.strip("<> %").replace(",", "."))
    assert abs(number - ratio * 100) <= 0.1 + 1e-9, (ratio, percent)
