"""The recommendation tables in the Django admin: books and purchases to inspect, the model read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery

from recommendations.models import ModelChange, ModelSnapshot, ModelState, Purchase, RecoBook


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by event handlers only: editing them by hand would desynchronise the model."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BookTitleMixin:
    """A ``title`` column from recommendations' own copy of the book (RecoBook), not a bare book id."""

    def get_queryset(self, request):
        titles = RecoBook.objects.filter(book_id=OuterRef("book_id")).values("title")[:1]
        return super().get_queryset(request).annotate(book_title=Subquery(titles))

    @admin.display(description="book", ordering="book_title")
    def book(self, obj) -> str:
        return f"{obj.book_title} [{obj.book_id}]" if obj.book_title else f"book {obj.book_id}"


@admin.register(RecoBook)
class RecoBookAdmin(ReadOnlyAdmin):
    list_display = ["book_id", "title", "authors", "genres", "language", "active", "updated_at"]
    list_filter = ["active", "language"]
    search_fields = ["title", "book_id"]


@admin.register(Purchase)
class PurchaseAdmin(BookTitleMixin, ReadOnlyAdmin):
    list_display = ["id", "order_id", "customer_id", "book", "quantity", "purchased_at", "cancelled", "cancelled_at"]
    list_filter = ["cancelled", "purchased_at"]
    search_fields = ["=order_id", "=customer_id", "=book_id"]
    date_hierarchy = "purchased_at"


@admin.register(ModelState)
class ModelStateAdmin(ReadOnlyAdmin):
    list_display = ["id", "generation", "version", "journal_floor", "updated_at"]


@admin.register(ModelChange)
class ModelChangeAdmin(BookTitleMixin, ReadOnlyAdmin):
    list_display = ["id", "version", "kind", "book", "customer_id", "purchased_at", "ownership_changed"]
    list_filter = ["kind", "ownership_changed"]
    search_fields = ["=book_id", "=customer_id", "=version"]


@admin.register(ModelSnapshot)
class ModelSnapshotAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "generation",
        "version",
        "format",
        "size_bytes",
        "books",
        "customers",
        "co_pairs",
        "created_at",
    ]
    exclude = ["data"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data")
