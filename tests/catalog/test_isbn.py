"""ISBN arithmetic and the importer's rules for trusting an ISBN (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog import isbn
from catalog.rows import default_price, resolve_isbn13


@pytest.mark.parametrize("value", ["9780306406157", "9780439023481", "9791032305690"])
def test_valid_isbn13(value):
    assert isbn.is_valid_isbn13(value)
    isbn.validate_isbn13(value)


@pytest.mark.parametrize(
    "value",
    [
        "9780306406158",  # check digit off by one
        "9780306406150",
        "978030640615",  # 12 digits
        "97803064061577",  # 14 digits
        "1234567890128",  # valid check digit but not a 978/979 prefix
        "978030640615X",
        "٩٧٨٠٣٠٦٤٠٦١٥٧",  # Arabic-Indic digits are digits to Python, not to an ISBN
    ],
)
def test_invalid_isbn13(value):
    assert not isbn.is_valid_isbn13(value)
    with pytest.raises(ValidationError):
        isbn.validate_isbn13(value)


def test_isbn10_check_digit_and_conversion():
    assert isbn.is_valid_isbn10("0306406152")
    assert isbn.is_valid_isbn10("080442957X")
    assert not isbn.is_valid_isbn10("0306406153")
    assert isbn.isbn10_to_isbn13("0306406152") == "9780306406157"


def test_parse_isbn_accepts_hyphens_and_isbn10_and_refuses_bad_check_digits():
    assert isbn.parse_isbn("978-0-306-40615-7") == "9780306406157"
    assert isbn.parse_isbn("0-306-40615-2") == "9780306406157"
    with pytest.raises(ValueError, match="check digit"):
        isbn.parse_isbn("978-0-306-40615-8")
    with pytest.raises(ValueError):
        isbn.parse_isbn("0-306-40615-3")
    with pytest.raises(ValueError):
        isbn.parse_isbn("hello")


def test_a_float_mangled_isbn13_is_recovered_only_when_exactly_one_isbn_reads_as_it():
    # 978043902348x: only the valid check digit 1 survives, and 9780439023481 rounds to the text.
    assert isbn.isbn13_candidates("9.78043902348e+12", significant_digits=12) == ["9780439023481"]
    # The writer dropped a trailing zero (978042518880): 9780425188798 and 9780425188804 both
    # round to it, so the ISBN is unknown.
    assert isbn.isbn13_candidates("9.7804251888e+12", significant_digits=12) == ["9780425188798", "9780425188804"]
    # Written with every digit: itself if valid, nothing if not.
    assert isbn.isbn13_candidates("9780306406157", significant_digits=12) == ["9780306406157"]
    assert isbn.isbn13_candidates("9780306406158", significant_digits=12) == []
    assert isbn.isbn13_candidates("76783609419.0", significant_digits=12) == []
    assert isbn.isbn13_candidates("", significant_digits=12) == []


def test_resolve_isbn13_trusts_an_isbn10_the_isbn13_column_agrees_with():
    assert resolve_isbn13("439023483", "9.78043902348e+12") == ("9780439023481", "from_isbn10_confirmed")
    assert resolve_isbn13("439023483", "") == ("9780439023481", "from_isbn10")  # leading zero restored
    assert resolve_isbn13("439023483", "76783609419.0") == ("9780439023481", "from_isbn10")  # not an ISBN there


def test_resolve_isbn13_leaves_contradictions_ambiguities_and_gaps_empty():
    # Both columns are ISBNs, of different books: the row contradicts itself.
    assert resolve_isbn13("553609416", "9.78055381395e+12") == (None, "conflict")
    assert resolve_isbn13("", "9.7804251888e+12") == (None, "ambiguous")
    assert resolve_isbn13("", "") == (None, "missing")
    assert resolve_isbn13("439023484", "") == (None, "invalid")  # wrong ISBN-10 check digit
    # A bad ISBN-10 does not spoil a float that alone proves the ISBN.
    assert resolve_isbn13("439023484", "9.78043902348e+12") == ("9780439023481", "from_isbn13")


def test_default_price_rule():
    assert default_price(publication_year=None, average_rating=None) == Decimal("9.99")
    assert default_price(publication_year=-720, average_rating=3.9) == Decimal("6.99")
    assert default_price(publication_year=1960, average_rating=4.25) == Decimal("9.99")
    assert default_price(publication_year=1997, average_rating=4.0) == Decimal("9.99")
    assert default_price(publication_year=2008, average_rating=4.34) == Decimal("12.99")
    assert default_price(publication_year=2015, average_rating=None) == Decimal("12.99")
