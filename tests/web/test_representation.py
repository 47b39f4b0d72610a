"""web/representation.py: each shortcut gives its field's own output, and leaves other values to the field."""

from __future__ import annotations

import datetime
import decimal
import zoneinfo

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework import serializers

from web.representation import formatter

UTC = datetime.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

CASES = [
    (serializers.CharField(), ["", "Dune", "ünïcode ✓", 12, decimal.Decimal("1.5")]),
    (serializers.IntegerField(), [0, -720, 2**40, True, "12", 12.0]),
    (serializers.BigIntegerField(), [0, 2**62, False]),
    (serializers.BigIntegerField(coerce_to_string=True), [0, 2**62]),
    (serializers.BooleanField(), [True, False, 1, 0, "true", "no"]),
    (
        serializers.DecimalField(max_digits=10, decimal_places=2),
        [
            decimal.Decimal("9.99"),
            decimal.Decimal("6"),
            decimal.Decimal("0.005"),  # rounds half to even, as the field's context does
            decimal.Decimal("0.015"),
            decimal.Decimal("-3.14159"),
            decimal.Decimal("12345678.90"),
            decimal.Decimal("1E+3"),
            decimal.Decimal("1.23E-7"),
            7.25,  # not a Decimal: the field converts it
            "4.5",
        ],
    ),
    (serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False), [decimal.Decimal("1.5")]),
    (serializers.DecimalField(max_digits=5, decimal_places=2, normalize_output=True), [decimal.Decimal("1.50")]),
    (
        serializers.DateTimeField(default_timezone=UTC),
        [
            datetime.datetime(2026, 12, 5, 19, 2, 21, 123456, tzinfo=UTC),
            datetime.datetime(2026, 12, 5, 19, 2, 21, tzinfo=UTC),  # no microseconds: none written
            datetime.datetime(1, 1, 1, tzinfo=UTC),
            datetime.datetime(2026, 12, 5, 20, 2, tzinfo=PARIS),  # another zone: converted to UTC
            datetime.datetime(2026, 12, 5, 20, 2),  # naive: made aware in UTC
            "2026-12-05T19:02:21Z",
        ],
    ),
    (serializers.DateTimeField(), [datetime.datetime(2026, 12, 5, 19, 2, tzinfo=UTC)]),
    (serializers.DateTimeField(default_timezone=UTC, format="%Y"), [datetime.datetime(2026, 12, 5, tzinfo=UTC)]),
]


@pytest.mark.parametrize(("field", "values"), CASES, ids=[type(field).__name__ for field, _ in CASES])
def test_each_value_is_formatted_as_its_field_formats_it(field, values):
    format_value = formatter(field)
    for value in values:
        expected = field.to_representation(value)
        assert format_value(value) == expected, value
        assert type(format_value(value)) is type(expected), value


def test_a_decimal_with_more_digits_than_its_field_takes_fails_as_the_field_fails():
    field = serializers.DecimalField(max_digits=5, decimal_places=2)
    with pytest.raises(decimal.InvalidOperation):
        field.to_representation(decimal.Decimal("123456.78"))
    with pytest.raises(decimal.InvalidOperation):
        formatter(field)(decimal.Decimal("123456.78"))


@override_settings(TIME_ZONE="Europe/Paris")
def test_a_utc_field_writes_utc_whatever_zone_a_request_activates():
    field = serializers.DateTimeField(default_timezone=UTC)
    value = datetime.datetime(2026, 12, 5, 19, 2, 21, 5, tzinfo=UTC)
    with timezone.override(PARIS):
        assert formatter(field)(value) == field.to_representation(value) == "2026-12-05T19:02:21.000005Z"


def test_fields_without_a_shortcut_are_the_fields_own():
    for field in (serializers.URLField(), serializers.SerializerMethodField(), serializers.DateTimeField()):
        assert formatter(field) == field.to_representation
