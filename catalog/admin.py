"""The catalog in the Django admin. Every write goes through catalog.services, so an admin edit
publishes the same events as the API; nothing is deleted here (books are withdrawn instead)."""

from __future__ import annotations

import contextlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Prefetch
from django.urls import reverse
from django.utils.html import format_html

from catalog import isbn as isbns
from catalog import services
from catalog.models import Author, Book, BookAuthor, Genre, ReservationLine, Stock, StockReservation


class NoDeleteMixin:
    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- books ---------------------------------------------------------------------------------------


class BookAdminForm(forms.ModelForm):
    isbn13 = forms.CharField(
        label="ISBN-13",
        required=False,
        help_text="ISBN-13 or ISBN-10 (converted); hyphens allowed. Leave empty when unknown.",
    )

    class Meta:
        model = Book
        # What book_update lets staff change, plus genres and the active flag it takes apart.
        fields = [*services.BOOK_EDITABLE_FIELDS, "genres", "active"]

    def clean_isbn13(self) -> str | None:
        value = self.cleaned_data.get("isbn13") or ""
        if not value.strip():
            return None
        try:
            return isbns.parse_isbn(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    def clean_currency(self) -> str:
        return (self.cleaned_data.get("currency") or "").strip().upper()


class BookAuthorFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        authors = [
            form.cleaned_data["author"]
            for form in self.forms
            if form.cleaned_data.get("author") and not form.cleaned_data.get("DELETE")
        ]
        if not authors:
            raise ValidationError("A book needs at least one author.")
        if len({author.pk for author in authors}) != len(authors):
            raise ValidationError("An author is listed twice.")

    def ordered_authors(self) -> list[Author]:
        rows = [
            (form.cleaned_data.get("position") or 0, index, form.cleaned_data["author"])
            for index, form in enumerate(self.forms)
            if form.cleaned_data.get("author") and not form.cleaned_data.get("DELETE")
        ]
        return [author for _, _, author in sorted(rows, key=lambda row: (row[0], row[1]))]


class BookAuthorInline(admin.TabularInline):
    model = BookAuthor
    formset = BookAuthorFormSet
    autocomplete_fields = ["author"]
    fields = ["position", "author"]
    extra = 1
    verbose_name = "author"
    verbose_name_plural = "authors (in credited order)"


@admin.register(Book)
class BookAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = BookAdminForm
    inlines = [BookAuthorInline]
    list_display = ["title", "author_names", "price_display", "active", "available", "isbn13", "language"]
    list_filter = ["active", "language", "genres", "currency"]
    search_fields = ["title", "isbn13", "book_authors__author__name"]
    list_select_related = ["stock"]
    filter_horizontal = ["genres"]
    readonly_fields = ["goodreads_book_id", "stock_link", "withdrawn_at", "created_at", "updated_at"]
    actions = ["withdraw_selected", "reinstate_selected"]
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("book_authors", queryset=BookAuthor.objects.select_related("author").order_by("position"))
            )
        )

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        normalized = isbns.normalize(search_term)
        if search_term and normalized.isdigit() and len(normalized) in (10, 13):
            with contextlib.suppress(ValueError):
                queryset |= self.model.objects.filter(isbn13=isbns.parse_isbn(normalized))
        return queryset, may_have_duplicates

    @admin.display(description="authors")
    def author_names(self, book: Book) -> str:
        return ", ".join(link.author.name for link in book.book_authors.all())

    @admin.display(description="price", ordering="price")
    def price_display(self, book: Book) -> str:
        return f"{book.price} {book.currency}"

    @admin.display(description="available", ordering=F("stock__on_hand") - F("stock__reserved"))
    def available(self, book: Book) -> int:
        stock = getattr(book, "stock", None)
        return stock.available if stock else 0

    @admin.display(description="stock")
    def stock_link(self, book: Book) -> str:
        stock = getattr(book, "stock", None) if book.pk else None
        if stock is None:
            return "—"
        url = reverse("admin:catalog_stock_change", args=[stock.pk])
        return format_html(
            '<a href="{}">{} on hand, {} reserved, {} available</a>',
            url,
            stock.on_hand,
            stock.reserved,
            stock.available,
        )

    def save_model(self, request, obj, form, change) -> None:
        """Saved in save_related, once the authors inline is known, through the services."""

    def save_related(self, request, form, formsets, change) -> None:
        data = form.cleaned_data
        author_formset = next(f for f in formsets if isinstance(f, BookAuthorFormSet))
        fields = {name: data[name] for name in services.BOOK_EDITABLE_FIELDS if name in data}
        authors, genres = author_formset.ordered_authors(), list(data.get("genres") or [])
        if change:
            services.book_update(book=form.instance, authors=authors, genres=genres, active=data["active"], **fields)
        else:
            book = services.book_create(authors=authors, genres=genres, **fields)
            if not data.get("active", True):
                services.book_withdraw(book=book)
            form.instance.pk = book.pk
        for formset in formsets:  # the admin's change message reads what a formset saved: nothing directly
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Withdraw selected books (stop selling them)")
    def withdraw_selected(self, request, queryset) -> None:
        count = 0
        for book in queryset.filter(active=True):
            services.book_withdraw(book=book)
            count += 1
        self.message_user(request, f"{count} book(s) withdrawn.", messages.SUCCESS)

    @admin.action(description="Reinstate selected books (sell them again)")
    def reinstate_selected(self, request, queryset) -> None:
        count = 0
        for book in queryset.filter(active=False):
            services.book_reinstate(book=book)
            count += 1
        self.message_user(request, f"{count} book(s) reinstated.", messages.SUCCESS)


# --- authors and genres -----------------------------------------------------------------------


@admin.register(Author)
class AuthorAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "book_count", "created_at"]
    search_fields = ["name"]
    fields = ["name"]
    ordering = ["name", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(book_count=Count("book_authors"))

    @admin.display(description="books", ordering="book_count")
    def book_count(self, author: Author) -> int:
        return author.book_count

    def save_model(self, request, obj, form, change) -> None:
        if change:
            services.author_update(author=obj, name=form.cleaned_data["name"])
        else:
            obj.pk = services.author_create(name=form.cleaned_data["name"]).pk


@admin.register(Genre)
class GenreAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "book_count"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug"]
    ordering = ["name", "id"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(book_count=Count("books"))

    @admin.display(description="books", ordering="book_count")
    def book_count(self, genre: Genre) -> int:
        return genre.book_count

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if change:
            services.genre_update(genre=obj, name=data["name"], slug=data["slug"])
        else:
            obj.pk = services.genre_create(name=data["name"], slug=data["slug"]).pk


# --- stock and reservations ---------------------------------------------------------------------


class InStockFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [("yes", "copies available"), ("no", "none available"), ("reserved", "some reserved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(on_hand__gt=F("reserved"))
        if self.value() == "no":
            return queryset.filter(on_hand__lte=F("reserved"))
        if self.value() == "reserved":
            return queryset.filter(reserved__gt=0)
        return queryset


class StockAdminForm(forms.ModelForm):
    class Meta:
        model = Stock
        fields = ["on_hand"]

    def clean_on_hand(self) -> int:
        on_hand = self.cleaned_data["on_hand"]
        if on_hand < self.instance.reserved:
            raise ValidationError(f"Cannot be less than the {self.instance.reserved} copies reserved for orders.")
        return on_hand


@admin.register(Stock)
class StockAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = StockAdminForm
    list_display = ["book", "on_hand", "reserved", "available", "updated_at"]
    list_filter = [InStockFilter]
    search_fields = ["book__title", "book__isbn13"]
    list_select_related = ["book"]
    readonly_fields = ["book", "reserved", "available", "updated_at"]
    fields = ["book", "on_hand", "reserved", "available", "updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # every book gets its stock row when it is created

    @admin.display(description="available", ordering=F("on_hand") - F("reserved"))
    def available(self, stock: Stock) -> int:
        return stock.available

    def save_model(self, request, obj, form, change) -> None:
        services.stock_set(book=obj.book, on_hand=form.cleaned_data["on_hand"])


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    fields = ["book", "quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StockReservation)
class StockReservationAdmin(NoDeleteMixin, admin.ModelAdmin):
    """What catalog holds per order. Read-only: only order events move a reservation."""

    list_display = ["order_id", "state", "line_summary", "created_at", "updated_at"]
    list_filter = ["state"]
    search_fields = ["order_id"]
    readonly_fields = ["order_id", "state", "rejection", "created_at", "updated_at"]
    inlines = [ReservationLineInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines__book")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="lines")
    def line_summary(self, reservation: StockReservation) -> str:
        return ", ".join(f"{line.quantity} x {line.book.title}" for line in reservation.lines.all()) or "—"
