"""One row of a goodbooks-10k style CSV, read and checked: :func:`parse_row` and its rules.

Nothing here touches the database: the importer (``catalog.importing``) upserts what this
module reads. The rules (which ISBN is trusted, the price rule) are in docs/catalog.md,
"Importing books".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.text import slugify

from catalog import isbn as isbns
from catalog.models import LANGUAGE_CODE, Author, Book

#: goodbooks-10k wrote ``isbn13`` as floats with 12 significant digits (``9.78043902348e+12``).
ISBN13_FLOAT_DIGITS = 12
MAX_YEAR_AHEAD = 2
MIN_YEAR = -3000
PLACEHOLDER_COVER = "/nophoto/"

_url = URLValidator(schemes=["http", "https"])


class BadRow(Exception):
    """A row that cannot be imported, with a code counted in the report and a message for the operator.

    Not a domain error: it never leaves the importer, which reports the row and goes on.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Row:
    line: int
    key: int
    title: str
    authors: list[str]
    isbn13: str | None
    isbn_outcome: str
    language: str
    publication_year: int | None
    cover_url: str
    price: Decimal | None
    currency: str | None
    genres: list[str] | None
    description: str | None
    rule_price: Decimal


def default_price(*, publication_year: int | None, average_rating: float | None) -> Decimal:
    """The price of a book whose file gives none (docs/catalog.md, "Price rule").

    By age of the work, as a shop prices editions: old classics are cheap paperbacks,
    recent books cost more; much-loved books (average rating 4.25 or more) one more.
    """
    if publication_year is None:
        price = Decimal("9.99")
    elif publication_year < 1900:
        price = Decimal("6.99")
    elif publication_year < 1980:
        price = Decimal("8.99")
    elif publication_year < 2000:
        price = Decimal("9.99")
    elif publication_year < 2010:
        price = Decimal("11.99")
    else:
        price = Decimal("12.99")
    if average_rating is not None and average_rating >= 4.25:
        price += Decimal("1.00")
    return price


def resolve_isbn13(isbn10_text: str, isbn13_text: str) -> tuple[str | None, str]:
    """The ISBN-13 a goodbooks row proves, and how (an outcome name counted in the report).

    - ``isbn`` (ISBN-10, leading zeros lost) valid, ``isbn13`` absent or agreeing: its ISBN-13;
    - ``isbn`` valid but ``isbn13`` names another ISBN: the row contradicts itself, none;
    - ``isbn`` absent or invalid: from ``isbn13`` only if exactly one valid ISBN-13 reads as it;
    - otherwise none.
    """
    isbn10_text, isbn13_text = isbn10_text.strip(), isbn13_text.strip()
    names_an_isbn13 = bool(isbn13_text) and _looks_like_isbn13(isbn13_text)
    if isbn10_text:
        isbn10 = isbns.normalize(isbn10_text).zfill(10)
        if isbns.is_valid_isbn10(isbn10):
            converted = isbns.isbn10_to_isbn13(isbn10)
            if not names_an_isbn13:
                return converted, "from_isbn10"
            if isbns.reads_as(converted, isbn13_text, significant_digits=ISBN13_FLOAT_DIGITS):
                return converted, "from_isbn10_confirmed"
            return None, "conflict"
    candidates = isbns.isbn13_candidates(isbn13_text, significant_digits=ISBN13_FLOAT_DIGITS) if isbn13_text else []
    if len(candidates) == 1:
        return candidates[0], "from_isbn13"
    if names_an_isbn13:
        return None, "ambiguous" if candidates else "invalid"
    if isbn10_text:
        return None, "invalid"
    return None, "missing"


def _looks_like_isbn13(text: str) -> bool:
    """Whether a float-notation value is a 13-digit number starting 978/979 (an ISBN's shape)."""
    try:
        value = int(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return False
    return 9_780_000_000_000 <= value < 9_800_000_000_000


def _integer(text: str) -> int | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def parse_row(data: dict[str, str], *, line: int, has_price_column: bool) -> Row:
    """One CSV row as a Row; raises :class:`BadRow` naming what is wrong."""

    def value(column: str) -> str:
        return (data.get(column) or "").strip()

    for column, text in data.items():
        if "\x00" in text:  # PostgreSQL text cannot hold it, and no title or name has one
            raise BadRow("bad_characters", f"{column} contains a NUL character")

    key_text = value("goodreads_book_id")
    if not key_text:
        raise BadRow("missing_key", "goodreads_book_id is empty")
    if not (key_text.isascii() and key_text.isdigit()) or int(key_text) == 0:
        raise BadRow("bad_key", f"goodreads_book_id {key_text!r} is not a positive whole number")
    key = int(key_text)

    title = " ".join(value("title").split())
    if not title:
        raise BadRow("missing_title", "title is empty")
    if len(title) > Book._meta.get_field("title").max_length:
        raise BadRow("bad_title", f"title is longer than {Book._meta.get_field('title').max_length} characters")

    authors = []
    for name in value("authors").split(","):
        name = " ".join(name.split())
        if name and name not in authors:
            authors.append(name)
    if not authors:
        raise BadRow("missing_authors", "authors is empty")
    too_long = [name for name in authors if len(name) > Author._meta.get_field("name").max_length]
    if too_long:
        raise BadRow("bad_authors", f"author name longer than 255 characters: {too_long[0][:40]}...")

    year_text = value("original_publication_year")
    publication_year = None
    if year_text:
        publication_year = _integer(year_text)
        latest = timezone.now().year + MAX_YEAR_AHEAD
        if publication_year is None or not MIN_YEAR <= publication_year <= latest:
            raise BadRow(
                "bad_year",
                f"original_publication_year {year_text!r} is not a year between {MIN_YEAR} and {latest}",
            )

    language = value("language_code")
    if len(language) > Book._meta.get_field("language").max_length:
        raise BadRow("bad_language", f"language_code {language[:40]!r} is longer than 16 characters")
    if language and not re.fullmatch(LANGUAGE_CODE, language):
        raise BadRow("bad_language", f"language_code {language!r} is not a language code (like eng or en-US)")

    cover_url = value("image_url")
    if PLACEHOLDER_COVER in cover_url:
        cover_url = ""  # goodreads' "no photo" image: the shop shows its own placeholder
    if cover_url:
        try:
            _url(cover_url)
        except ValidationError:
            raise BadRow("bad_cover_url", f"image_url {cover_url[:80]!r} is not an http(s) URL") from None
        if len(cover_url) > Book._meta.get_field("cover_url").max_length:
            raise BadRow("bad_cover_url", "image_url is longer than 500 characters")

    price = None
    if has_price_column and value("price"):
        try:
            price = Decimal(value("price"))
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
            raise BadRow("bad_price", f"price {value('price')!r} is not an amount like 12.99")
        if price >= Decimal("1e8"):
            raise BadRow("bad_price", f"price {value('price')!r} is too large")
    currency = value("currency").upper() or None
    if currency is not None and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise BadRow("bad_currency", f"currency {value('currency')!r} is not a 3-letter ISO 4217 code")

    genres = None
    if value("genres"):
        genres = []
        for name in value("genres").split("|"):
            name = " ".join(name.split())
            if name and name not in genres:
                genres.append(name)
        if any(len(name) > 100 or not slugify(name) for name in genres):
            raise BadRow("bad_genres", "a genre name is longer than 100 characters or has no letters")

    isbn13, isbn_outcome = resolve_isbn13(value("isbn"), value("isbn13"))
    try:
        rating = float(value("average_rating")) if value("average_rating") else None
    except ValueError:
        rating = None
    return Row(
        line=line,
        key=key,
        title=title,
        authors=authors,
        isbn13=isbn13,
        isbn_outcome=isbn_outcome,
        language=language,
        publication_year=publication_year,
        cover_url=cover_url,
        price=price,
        currency=currency,
        genres=genres,
        description=value("description") or None,
        rule_price=default_price(publication_year=publication_year, average_rating=rating),
    )
