"""Query parameters of the book list. A value that cannot be read is a 400 naming the parameter."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import Exists, F, OuterRef
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from catalog.models import LANGUAGE_CODE, Book, BookAuthor
from web.limits import BIGINT_MAX, INT_MAX, INT_MIN


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no); anything else is an error, not silently ignored."""

    TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("Use true or false.", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.Filter):
    field_class = StrictBooleanField


class WholeNumberFormField(forms.IntegerField):
    """Digits only (``1999``, ``-720``): Django's IntegerField also takes ``1999.0``, an invalid schema integer."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not re.fullmatch(r"-?[0-9]+", value.strip()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IntegerFilter(filters.NumberFilter):
    """A whole number within the column's range (``publication_year`` is a 32-bit integer)."""

    field_class = WholeNumberFormField

    def __init__(self, *args, min_value=INT_MIN, max_value=INT_MAX, **kwargs):
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)


MAX_IN_VALUES = 100  # ids or codes in one comma-separated filter


# The type of one value: django-filter's schema extension makes the comma-separated array of it.
@extend_schema_field({"type": "integer", "minimum": 1, "maximum": BIGINT_MAX})
class IntegerInFilter(filters.BaseInFilter, IntegerFilter):
    """Comma-separated ids: ``?author=3,17`` (1 to the 64-bit maximum, at most MAX_IN_VALUES of them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=BIGINT_MAX, **kwargs)


class CharInFilter(filters.BaseInFilter, filters.CharFilter):
    """Comma-separated values."""


@extend_schema_field({"type": "string", "pattern": LANGUAGE_CODE, "maxLength": 16})
class LanguageInFilter(CharInFilter):
    """Comma-separated language codes: ``?language=eng,en-US`` (each checked by BookFilterForm)."""


@extend_schema_field({"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$"})
class SlugInFilter(CharInFilter):
    """Comma-separated slugs: ``?genre=science-fiction,fantasy`` (each checked by BookFilterForm)."""


class BookFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        # Messages carry the client's text as params, never inside the message itself: django-filter
        # %-formats every message, so a "%" in a value (?genre=50%25) broke the formatting (a 500).
        for low, high in (("price_min", "price_max"), ("year_min", "year_max")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(
                    high,
                    ValidationError("Must not be below %(low)s (%(value)s).", params={"low": low, "value": data[low]}),
                )
        for name in ("author", "genre", "language"):
            if len(data.get(name) or ()) > MAX_IN_VALUES:
                self.add_error(name, ValidationError("At most %(count)s values.", params={"count": MAX_IN_VALUES}))
        for code in data.get("language") or ():
            if len(code) > 16 or not re.fullmatch(LANGUAGE_CODE, code):
                self.add_error(
                    "language",
                    ValidationError("%(code)r is not a language code (like eng or en-US).", params={"code": code[:40]}),
                )
                break
        for slug in data.get("genre") or ():
            try:
                validate_slug(slug)
            except ValidationError:
                self.add_error(
                    "genre",
                    ValidationError("%(slug)r is not a genre slug (letters, digits, - and _).", params={"slug": slug}),
                )
                break
        return data


class BookFilter(filters.FilterSet):
    author = IntegerInFilter(method="filter_author", help_text="Author id(s), comma-separated: any of them.")
    genre = SlugInFilter(method="filter_genre", help_text="Genre slug(s), comma-separated: any of them.")
    language = LanguageInFilter(field_name="language", help_text="Language code(s) as stored, e.g. eng,en-US.")
    price_min = filters.NumberFilter(field_name="price", lookup_expr="gte", min_value=0, help_text="Lowest price.")
    price_max = filters.NumberFilter(field_name="price", lookup_expr="lte", min_value=0, help_text="Highest price.")
    year_min = IntegerFilter(field_name="publication_year", lookup_expr="gte", help_text="Earliest year (BCE < 0).")
    year_max = IntegerFilter(field_name="publication_year", lookup_expr="lte", help_text="Latest year (BCE < 0).")
    in_stock = StrictBooleanFilter(method="filter_in_stock", help_text="true: copies available; false: none.")

    class Meta:
        model = Book
        fields: list[str] = []
        form = BookFilterForm

    # Each filter reads the query parameter of its own name and ignores an empty one, and the form
    # needs none: a request with none of them is not filtered, and web.filtering skips building us.
    unfiltered_without_its_parameters = True

    _form_class = None

    def get_form_class(self):
        # django-filter builds a new form class (and a field per filter) on every request, a tenth of
        # a book-list request; its fields depend on nothing in the request, and each form instance
        # deep-copies them, so one class serves every request.
        if BookFilter._form_class is None:
            BookFilter._form_class = super().get_form_class()
        return BookFilter._form_class

    def filter_author(self, queryset, name, value):
        return queryset.filter(Exists(BookAuthor.objects.filter(book=OuterRef("pk"), author_id__in=value)))

    def filter_genre(self, queryset, name, value):
        through = Book.genres.through
        return queryset.filter(Exists(through.objects.filter(book=OuterRef("pk"), genre__slug__in=value)))

    def filter_in_stock(self, queryset, name, value):
        if value:
            return queryset.filter(stock__on_hand__gt=F("stock__reserved"))
        return queryset.exclude(stock__on_hand__gt=F("stock__reserved"))
