"""A serializer field's ``to_representation`` for plain values, without its per-call overhead.

A list page formats hundreds of values; DRF's fields are general (a DecimalField copies the decimal
context on every call, a DateTimeField looks up time zones and formats, a BooleanField tries three
sets), which made formatting a quarter of a book-list request (docs/benchmarks.md). For the value
types a database row holds, :func:`formatter` returns a function with the field's exact output, and
hands every other value (another type, another setting of the field) to the field itself.
``tests/web/test_representation.py`` holds each shortcut to its field's output.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable

from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

UTC = datetime.UTC


def formatter(field: serializers.Field) -> Callable[[object], object]:
    """``field.to_representation``, with a shortcut for the value types a row of its column holds."""
    slow = field.to_representation
    kind = type(field)
    if kind is serializers.CharField:
        return lambda value: value if type(value) is str else slow(value)
    if kind is serializers.IntegerField:
        return lambda value: value if type(value) is int else slow(value)
    if kind is serializers.BigIntegerField and not getattr(
        field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING
    ):
        return lambda value: value if type(value) is int else slow(value)
    if kind is serializers.BooleanField:
        return lambda value: value if type(value) is bool else slow(value)
    if kind is serializers.DecimalField:
        return _decimal_formatter(field, slow)
    if kind is serializers.DateTimeField:
        return _datetime_formatter(field, slow)
    return slow


def _decimal_formatter(field: serializers.DecimalField, slow: Callable) -> Callable[[object], object]:
    coerce_to_string = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
    if (
        not coerce_to_string
        or field.localize
        or field.normalize_output
        or field.decimal_places is None
        or field.max_digits is None
        or field.rounding is not None
    ):
        return slow
    exponent = decimal.Decimal(1).scaleb(-field.decimal_places)
    # The field quantizes in a context of max_digits digits, which fails for a value with more
    # integer digits than that leaves: such values go to the field. For the others, quantizing in
    # the default context (28 digits, the same rounding) gives the same digits.
    integer_digits = field.max_digits - field.decimal_places

    def decimal_text(value):
        if type(value) is decimal.Decimal and value.is_finite() and value.adjusted() < integer_digits:
            return f"{value.quantize(exponent):f}"
        return slow(value)

    return decimal_text


def _datetime_formatter(field: serializers.DateTimeField, slow: Callable) -> Callable[[object], object]:
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    # Only a field fixed to UTC: otherwise the time zone is the request's, looked up per value.
    if getattr(field, "timezone", None) is not UTC or output_format is None or output_format.lower() != ISO_8601:
        return slow

    def utc_text(value):
        # An aware UTC datetime, as the database's converters give them: astimezone(UTC) would return
        # it unchanged, and its ISO form ends in +00:00, which the field writes as Z.
        if type(value) is datetime.datetime and value.tzinfo is UTC:
            return value.isoformat()[:-6] + "Z"
        return slow(value)

    return utc_text
