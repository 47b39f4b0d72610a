"""orders in the admin: orders (with a ship action), carts, the product and customer copies, payments, idempotency keys.

People and books show by name: from the copies orders keeps of accounts' and catalog's facts
(``Customer``, ``Product``), never by calling those modules. An id whose events have not
arrived yet shows as the bare id.

Orders change state only through their services (which record the events), never by
editing a field here.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery

from orders import services
from orders.errors import IllegalTransition
from orders.models import (
    Cart,
    CartItem,
    Customer,
    CustomerAccess,
    IdempotencyRecord,
    Order,
    OrderLine,
    PaymentAttempt,
    Product,
)
from web.customer_access import CustomerAccessAdmin


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UUIDSearchMixin:
    """Search UUID columns by exact value (a partial or malformed id matches nothing instead of failing)."""

    uuid_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            value = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        query = None
        for name in self.uuid_search_fields:
            condition = queryset.filter(**{name: value})
            query = condition if query is None else query | condition
        return query, False


class CustomerNameMixin:
    """Columns with the customer's name and email from orders' copy, and search by them."""

    def get_queryset(self, request):
        copy = Customer.objects.filter(customer_id=OuterRef("customer_id"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                customer_name=Subquery(copy.values("name")[:1]), customer_email=Subquery(copy.values("email")[:1])
            )
        )

    @admin.display(description="customer", ordering="customer_name")
    def customer(self, obj) -> str:
        return obj.customer_name or str(obj.customer_id)

    @admin.display(description="email", ordering="customer_email")
    def email(self, obj) -> str:
        return obj.customer_email or "—"

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            named = Customer.objects.filter(name__icontains=term) | Customer.objects.filter(email__icontains=term)
            found = found | queryset.filter(customer_id__in=list(named.values_list("customer_id", flat=True)[:500]))
        return found, may_have_duplicates


@admin.register(Customer)
class CustomerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "email", "customer_id", "state_as_of"]
    search_fields = ["name", "email", "=customer_id"]


@admin.register(Product)
class ProductAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["book_id", "title", "price", "currency", "active", "withdrawn", "available", "state_as_of"]
    list_filter = ["active", "withdrawn", "currency"]
    search_fields = ["title", "=book_id"]


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    fields = ["book_id", "title", "quantity", "added_at", "updated_at"]
    readonly_fields = ["title", "added_at", "updated_at"]

    def get_queryset(self, request):
        # Every item's title in the items' own query, not one lookup per item.
        titles = Product.objects.filter(book_id=OuterRef("book_id")).values("title")[:1]
        return super().get_queryset(request).annotate(product_title=Subquery(titles))

    @admin.display(description="title")
    def title(self, item: CartItem) -> str:
        return getattr(item, "product_title", None) or "—"


@admin.register(Cart)
class CartAdmin(CustomerNameMixin, UUIDSearchMixin, admin.ModelAdmin):
    list_display = ["customer", "email", "item_count", "created_at", "updated_at"]
    date_hierarchy = "updated_at"
    search_fields = ["=customer_id"]
    uuid_search_fields = ("customer_id",)
    readonly_fields = ["customer", "email", "customer_id", "created_at", "updated_at"]
    inlines = [CartItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(items_in_cart=Count("items"))

    @admin.display(description="items", ordering="items_in_cart")
    def item_count(self, cart: Cart) -> int:
        return cart.items_in_cart


class OrderLineInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ["book_id", "title", "quantity", "unit_price", "line_total", "rejection_reason", "rejection_available"]
    readonly_fields = fields


class PaymentAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    fields = ["attempted_at", "outcome", "decline_code", "amount", "currency", "card_brand", "card_last4", "reference"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(CustomerNameMixin, UUIDSearchMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "customer", "email", "state", "total", "currency", "created_at", "paid_at", "shipped_at"]
    list_filter = ["state", "currency", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "=customer_id", "lines__title"]
    uuid_search_fields = ("id", "customer_id")
    inlines = [OrderLineInline, PaymentAttemptInline]
    actions = ["ship"]

    def has_delete_permission(self, request, obj=None):
        # Deleting an order would strand its saga (reserved stock, events already sent).
        return False

    fields = [
        "id",
        "customer",
        "email",
        "customer_id",
        "state",
        "currency",
        "total",
        "created_at",
        "confirmed_at",
        "rejected_at",
        "paid_at",
        "shipped_at",
        "cancelled_at",
        "release_requested_at",
        "payment_reference",
        "rejection_reason",
        "reannounced_count",
        "reannounced_at",
    ]
    readonly_fields = fields

    @admin.action(description="Ship selected paid orders")
    def ship(self, request, queryset):
        shipped, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                services.order_ship(order_id=order_id)
                shipped += 1
            except IllegalTransition as error:
                refused.append(f"{order_id}: {error.reason}")
        if shipped:
            self.message_user(request, f"{shipped} order(s) shipped.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "attempted_at",
        "order",
        "outcome",
        "decline_code",
        "amount",
        "currency",
        "card_brand",
        "card_last4",
    ]
    list_filter = ["outcome", "decline_code", "card_brand"]
    date_hierarchy = "attempted_at"
    search_fields = ["reference", "card_last4"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(CustomerNameMixin, UUIDSearchMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["key", "customer", "status", "response_status", "order_id", "created_at", "completed_at"]
    list_filter = ["status", "response_status"]
    date_hierarchy = "created_at"
    search_fields = ["=key", "=customer_id"]
    uuid_search_fields = ("key", "customer_id", "order_id")
    exclude = ["lock_token"]


@admin.register(CustomerAccess)
class OrdersCustomerAccessAdmin(CustomerNameMixin, UUIDSearchMixin, CustomerAccessAdmin):
    """Whose tokens orders refuses, by name and email from its customer copy."""

    list_display = ["customer", "email", "customer_id", "active", "as_of"]
    search_fields = ["=customer_id"]
    uuid_search_fields = ("customer_id",)
