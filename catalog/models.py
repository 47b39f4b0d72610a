"""catalog's tables: books, their authors and genres, stock, and stock reservations for orders.

Writes go through :mod:`catalog.services` (which publish the events); nothing else
saves these models, not even the admin.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from catalog.isbn import validate_isbn13

#: A language code as books carry it (ISO 639 ``eng``, BCP 47 ``en-US``): letters, then subtags.
LANGUAGE_CODE = r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"


class Author(models.Model):
    # Unique by name: the import sources we read (goodbooks-10k) name authors and nothing else,
    # so two people with one name are one author here. See docs/catalog.md.
    name = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Genre(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    # The stable key of the import source: re-importing a file updates these rows instead of
    # adding new ones. Books created by staff have none.
    goodreads_book_id = models.PositiveBigIntegerField(unique=True, null=True, blank=True)
    title = models.CharField(max_length=500)
    # Null when unknown: an ISBN is never invented or guessed (docs/catalog.md, "ISBN").
    isbn13 = models.CharField(
        "ISBN-13", max_length=13, unique=True, null=True, blank=True, validators=[validate_isbn13]
    )
    authors = models.ManyToManyField(Author, through="BookAuthor", related_name="books")
    genres = models.ManyToManyField(Genre, related_name="books", blank=True)
    language = models.CharField(max_length=16, blank=True, db_index=True)
    publication_year = models.IntegerField(null=True, blank=True, help_text="Negative for BCE (ancient works).")
    description = models.TextField(blank=True)
    cover_url = models.URLField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code, e.g. EUR or USD.")
    active = models.BooleanField(default=True, help_text="False once withdrawn: hidden from the public list.")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Title and author names, case-folded: what ?search= matches (icontains on SQLite, a
    # full-text index on PostgreSQL, see migration 0002). Kept in step by the services.
    search_document = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        indexes = [
            models.Index(fields=["title", "id"], name="catalog_book_title_id"),
            models.Index(fields=["price", "id"], name="catalog_book_price_id"),
            models.Index(fields=["publication_year", "id"], name="catalog_book_year_id"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_book_price_not_negative"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="catalog_book_currency_iso"),
            models.CheckConstraint(
                condition=Q(isbn13__isnull=True) | Q(isbn13__regex=r"^97[89][0-9]{10}$"),
                name="catalog_book_isbn13_shape",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class BookAuthor(models.Model):
    """A book's author, in the order the authors are credited (``position``)."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="book_authors")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="book_authors")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["book_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["book", "author"], name="catalog_bookauthor_once")]

    def __str__(self) -> str:
        return f"{self.author} ({self.position + 1})"


class Stock(models.Model):
    """Copies of one book: ``on_hand`` in the warehouse, of which ``reserved`` are held for orders.

    The database refuses a negative or over-reserved stock whatever the code does.
    """

    book = models.OneToOneField(Book, on_delete=models.CASCADE, primary_key=True, related_name="stock")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["book_id"]
        verbose_name_plural = "stock"
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="catalog_stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="catalog_stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="catalog_stock_reserved_within"),
        ]

    def __str__(self) -> str:
        return f"{self.book_id}: {self.available} available ({self.on_hand} on hand, {self.reserved} reserved)"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockReservation(models.Model):
    """What catalog did for one order: the saga's memory, which makes its handlers idempotent.

    ``cancelled`` without lines records a cancellation that arrived before the order
    itself, so that the late ``OrderPlaced`` reserves nothing.
    """

    class State(models.TextChoices):
        RESERVED = "reserved", "reserved"
        REJECTED = "rejected", "rejected"
        RELEASED = "released", "released"
        SOLD = "sold", "sold"
        CANCELLED = "cancelled", "cancelled before placed"

    order_id = models.UUIDField(unique=True)
    state = models.CharField(max_length=20, choices=State.choices, db_index=True)
    # Per line, why it was refused (StockRejected's lines), for the operator.
    rejection = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.state}"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(StockReservation, on_delete=models.CASCADE, related_name="lines")
    book = models.ForeignKey(Book, on_delete=models.PROTECT, related_name="reservation_lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["reservation_id", "book_id"]
        constraints = [
            models.UniqueConstraint(fields=["reservation", "book"], name="catalog_reservationline_once"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="catalog_reservationline_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x book {self.book_id}"
