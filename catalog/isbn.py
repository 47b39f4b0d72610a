"""ISBN arithmetic: check digits, ISBN-10 to ISBN-13, and what a float-mangled ISBN-13 can still tell.

Pure functions, no database: the importer, the services and the API share them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django.core.exceptions import ValidationError

ISBN13_PREFIXES = ("978", "979")


def normalize(raw: str) -> str:
    """Drop the hyphens and spaces people write ISBNs with; upper-case the ISBN-10 ``X``."""
    return "".join(raw.split()).replace("-", "").upper()


def isbn13_check_digit(first_twelve: str) -> str:
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def is_valid_isbn13(value: str) -> bool:
    return (
        len(value) == 13
        and value.isascii()
        and value.isdigit()
        and value.startswith(ISBN13_PREFIXES)
        and isbn13_check_digit(value[:12]) == value[12]
    )


def is_valid_isbn10(value: str) -> bool:
    if len(value) != 10 or not value.isascii() or not value[:9].isdigit():
        return False
    if not (value[9].isdigit() or value[9] == "X"):
        return False
    total = sum((10 - index) * (10 if char == "X" else int(char)) for index, char in enumerate(value))
    return total % 11 == 0


def isbn10_to_isbn13(isbn10: str) -> str:
    """The ISBN-13 of a valid ISBN-10: prefix 978, drop the old check digit, compute the new one."""
    body = "978" + isbn10[:9]
    return body + isbn13_check_digit(body)


def parse_isbn(raw: str) -> str:
    """An ISBN-10 or ISBN-13 as written by a person, as a valid ISBN-13; ``ValueError`` otherwise."""
    value = normalize(raw)
    if len(value) == 10:
        if not is_valid_isbn10(value):
            raise ValueError(f"{raw!r} is not a valid ISBN-10 (wrong check digit or characters).")
        return isbn10_to_isbn13(value)
    if len(value) == 13:
        if not (value.isascii() and value.isdigit() and value.startswith(ISBN13_PREFIXES)):
            raise ValueError(f"{raw!r} is not an ISBN-13: 13 digits starting with 978 or 979.")
        if not is_valid_isbn13(value):
            raise ValueError(f"{raw!r} has a wrong check digit (expected {isbn13_check_digit(value[:12])}).")
        return value
    raise ValueError(f"{raw!r} is not an ISBN: expected 13 digits (or an ISBN-10).")


def validate_isbn13(value: str) -> None:
    """Django validator for the stored form: exactly 13 digits with a valid check digit."""
    if not is_valid_isbn13(value):
        raise ValidationError(
            "%(value)s is not a valid ISBN-13 (13 digits, 978/979, valid check digit).",
            code="invalid_isbn13",
            params={"value": value},
        )


def isbn13_candidates(text: str, *, significant_digits: int) -> list[str]:
    """Every valid ISBN-13 that, rounded to ``significant_digits``, reads as ``text``.

    A spreadsheet that stored ISBN-13s as floats wrote ``9.78043902348e+12``: the
    thirteenth digit (and sometimes the twelfth, by rounding) is gone. At most two
    valid ISBN-13s round to such a value, one of each side of the rounding; only
    when exactly one exists is the ISBN known. A value written with all its digits
    yields itself if valid. Anything else yields nothing.
    """
    number = _integral(text)
    if number is None:
        return []
    value = int(number)
    if len(str(value)) != 13:
        return []
    written = len(number.normalize().as_tuple().digits)
    if written == 13 and "e" not in text.lower():
        candidate = str(value)
        return [candidate] if is_valid_isbn13(candidate) else []
    precision = max(written, significant_digits)
    if precision >= 13:
        candidate = str(value)
        return [candidate] if is_valid_isbn13(candidate) else []
    lost = 10 ** (13 - precision)
    candidates = []
    for body in range((value - lost) // 10, (value + lost) // 10 + 1):
        candidate = str(body) + isbn13_check_digit(str(body))
        if len(candidate) == 13 and is_valid_isbn13(candidate) and _rounds_to(int(candidate), precision) == value:
            candidates.append(candidate)
    return candidates


def reads_as(isbn13: str, text: str, *, significant_digits: int) -> bool:
    """Whether the valid ``isbn13`` is one of :func:`isbn13_candidates` of ``text``, without listing them."""
    number = _integral(text)
    if number is None:
        return False
    value = int(number)
    written = len(number.normalize().as_tuple().digits)
    precision = 13 if written == 13 and "e" not in text.lower() else max(written, significant_digits)
    if precision >= 13:
        return value == int(isbn13)
    return _rounds_to(int(isbn13), precision) == value


def _integral(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value() or number <= 0:
        return None
    return number


def _rounds_to(number: int, precision: int) -> int:
    quantum = Decimal(10) ** (len(str(number)) - precision)
    return int((Decimal(number) / quantum).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * quantum)
