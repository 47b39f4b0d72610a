from __future__ import annotations

import datetime
import functools
from collections.abc import Callable

from django.utils import timezone
from rest_framework import serializers

from catalog import isbn as isbns
from catalog.models import LANGUAGE_CODE, Author, Book, Genre, Stock
from web.limits import INT_MAX, INT_MIN
from web.representation import formatter

STAFF_ONLY_BOOK_FIELDS = ("goodreads_book_id", "on_hand", "reserved", "withdrawn_at")


class AuthorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Author
        fields = ["id", "name"]


class AuthorWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)


class GenreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["id", "name", "slug"]


class GenreWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=100, required=False)


class BookSerializer(serializers.ModelSerializer):
    """A book as customers see it; staff also see the import key and the stock's parts."""

    authors = serializers.SerializerMethodField()
    genres = GenreSerializer(many=True, read_only=True)
    # Not a URI in the schema: a book without a cover has "" here.
    cover_url = serializers.CharField(read_only=True, help_text="The cover image's URL, or empty if there is none.")
    available = serializers.SerializerMethodField()
    on_hand = serializers.SerializerMethodField()
    reserved = serializers.SerializerMethodField()
    # Timestamps are UTC in the API whatever time zone a request activates; fixed here, the field
    # skips looking the current one up per value (a fifth of a book-list page's formatting).
    created_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC)
    updated_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC)

    class Meta:
        model = Book
        fields = [
            "id",
            "title",
            "isbn13",
            "authors",
            "genres",
            "language",
            "publication_year",
            "description",
            "cover_url",
            "price",
            "currency",
            "active",
            "available",
            "created_at",
            "updated_at",
            *STAFF_ONLY_BOOK_FIELDS,
        ]
        read_only_fields = fields

    def get_authors(self, book: Book) -> list[dict]:
        return [{"id": link.author.id, "name": link.author.name} for link in book.book_authors.all()]

    def _stock(self, book: Book) -> Stock | None:
        return getattr(book, "stock", None)

    def get_available(self, book: Book) -> int:
        stock = self._stock(book)
        return max(stock.available, 0) if stock else 0

    def get_on_hand(self, book: Book) -> int:
        stock = self._stock(book)
        return stock.on_hand if stock else 0

    def get_reserved(self, book: Book) -> int:
        stock = self._stock(book)
        return stock.reserved if stock else 0

    def to_representation(self, book: Book) -> dict:
        data = super().to_representation(book)
        if not self.context.get("staff"):
            for name in STAFF_ONLY_BOOK_FIELDS:
                data.pop(name, None)
        return data


@functools.cache
def _book_row_plan(staff: bool) -> tuple[tuple[str, Callable[[object], object] | None], ...]:
    """BookSerializer's fields in order, each with its formatter (None: computed from the row), for staff or not.

    Built once: binding BookSerializer's fields cost a tenth of a list request, and a field's
    representation keeps no state (the timestamps' fields are fixed to UTC).
    """
    return tuple(
        (name, None if name in _ROW_COMPUTED else formatter(field))
        for name, field in BookSerializer().fields.items()
        if staff or name not in STAFF_ONLY_BOOK_FIELDS
    )


_ROW_COMPUTED = {"authors", "genres", "available", "on_hand", "reserved"}


def book_row_representation(row: dict, *, staff: bool) -> dict:
    """What BookSerializer makes of a book, from a row of ``selectors.book_values`` completed by
    ``selectors.book_rows_complete``: the same keys in the same order, each value formatted as the
    serializer's own field formats it (web/representation.py), without building model instances
    (see docs/benchmarks.md). The row's author and genre lists become the representation's."""
    on_hand, reserved = row["stock__on_hand"] or 0, row["stock__reserved"] or 0
    computed = {
        "authors": row["authors"],
        "genres": row["genres"],
        "available": max(on_hand - reserved, 0),
        "on_hand": on_hand,
        "reserved": reserved,
    }
    data = {}
    for name, format_value in _book_row_plan(staff):
        if format_value is None:
            data[name] = computed[name]
        else:
            raw = row[name]
            data[name] = None if raw is None else format_value(raw)
    return data


def book_rows_representation(rows: list[dict], *, staff: bool) -> list[dict]:
    return [book_row_representation(row, staff=staff) for row in rows]


def _latest_year() -> int:
    return timezone.now().year + 2


class BookWriteSerializer(serializers.Serializer):
    """What staff send to create (POST) or change (PUT/PATCH) a book."""

    title = serializers.CharField(max_length=500)
    isbn13 = serializers.CharField(
        allow_null=True,
        allow_blank=True,
        required=False,
        help_text="ISBN-13 (or ISBN-10, converted); hyphens allowed; checked against its check digit.",
    )
    author_ids = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Author.objects.all(), help_text="Credited authors, in order."
    )
    genre_ids = serializers.PrimaryKeyRelatedField(many=True, queryset=Genre.objects.all(), required=False)
    language = serializers.RegexField(
        LANGUAGE_CODE, max_length=16, allow_blank=True, required=False, help_text="A language code: eng, en-US."
    )
    publication_year = serializers.IntegerField(
        allow_null=True, required=False, min_value=-3000, max_value=INT_MAX, help_text="Negative for BCE."
    )
    description = serializers.CharField(allow_blank=True, required=False)
    cover_url = serializers.URLField(max_length=500, allow_blank=True, required=False)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3, required=False, help_text="ISO 4217, e.g. EUR.")
    on_hand = serializers.IntegerField(
        min_value=0, max_value=INT_MAX, required=False, help_text="Initial copies (create only)."
    )
    active = serializers.BooleanField(required=False, help_text="false withdraws the book, true reinstates it.")

    def validate_isbn13(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return isbns.parse_isbn(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from error

    def validate_publication_year(self, value: int | None) -> int | None:
        if value is not None and value > _latest_year():
            raise serializers.ValidationError(f"Ensure this value is at most {_latest_year()}.")
        return value

    def validate_author_ids(self, value: list[Author]) -> list[Author]:
        if not value:
            raise serializers.ValidationError("A book needs at least one author.")
        if len({a.pk for a in value}) != len(value):
            raise serializers.ValidationError("An author is listed twice.")
        return value

    def validate_genre_ids(self, value: list[Genre]) -> list[Genre]:
        if len({g.pk for g in value}) != len(value):
            raise serializers.ValidationError("A genre is listed twice.")
        return value

    def validate(self, data: dict) -> dict:
        if self.instance is None and "active" in data:
            raise serializers.ValidationError({"active": ["A new book is always active."]})
        if self.instance is not None and "on_hand" in data:
            raise serializers.ValidationError({"on_hand": ["Change stock with PUT /api/catalog/books/{id}/stock/."]})
        return data


class StockSerializer(serializers.ModelSerializer):
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Stock
        fields = ["book_id", "on_hand", "reserved", "available", "updated_at"]
        read_only_fields = fields


class StockSetSerializer(serializers.Serializer):
    on_hand = serializers.IntegerField(
        min_value=0, max_value=INT_MAX, help_text="Copies in the warehouse after a count."
    )


class StockAdjustSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=INT_MIN, max_value=INT_MAX, help_text="Copies received (positive) or written off (negative)."
    )

    def validate_delta(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value
