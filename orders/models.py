"""orders' tables: its copy of products, carts, orders, payments and idempotency records.

Nothing here points at another module's tables: books are plain ``book_id`` integers and
customers plain ``customer_id`` UUIDs (the JWT subject).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from web.customer_access import CustomerAccessBase

MAX_LINE_QUANTITY = 99


class Product(models.Model):
    """What orders knows of a catalog book, kept current by catalog's events.

    A row may be partial (e.g. stock arrived before the book itself): such a product is
    not for sale until its title and price are known. ``state_as_of`` and
    ``stock_as_of`` are the envelope times of the events last applied, so that a stale
    event delivered late never overwrites a newer one.
    """

    book_id = models.BigIntegerField(primary_key=True)
    title = models.CharField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    active = models.BooleanField(default=False)
    withdrawn = models.BooleanField(default=False)
    available = models.IntegerField(default=0)
    state_as_of = models.DateTimeField(null=True, blank=True)
    stock_as_of = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["book_id"]

    def __str__(self) -> str:
        return f"{self.title or '(unknown title)'} [{self.book_id}]"

    @property
    def is_known(self) -> bool:
        """Title and price arrived (a BookPublished/BookUpdated was applied)."""
        return self.state_as_of is not None and self.price is not None and bool(self.currency)

    @property
    def for_sale(self) -> bool:
        return self.is_known and self.active and not self.withdrawn


class Customer(models.Model):
    """What orders knows of an accounts customer (name and email), kept current by accounts' events.

    Only for people reading orders (the admin); no rule of checkout depends on it, so an order
    of a customer whose events have not arrived yet is still taken. ``state_as_of`` is the
    envelope time of the event last applied: a stale event delivered late changes nothing.
    """

    customer_id = models.UUIDField(primary_key=True)
    email = models.EmailField(max_length=254, db_index=True)
    name = models.CharField(max_length=150)
    state_as_of = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "email"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Cart(models.Model):
    """One cart per customer, created on the first item."""

    customer_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"cart of {self.customer_id}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, related_name="items", on_delete=models.CASCADE)
    book_id = models.BigIntegerField()
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_LINE_QUANTITY)])
    added_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "book_id"], name="orders_cart_item_one_per_book"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=MAX_LINE_QUANTITY),
                name="orders_cart_item_quantity_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x book {self.book_id}"


class Order(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "pending (waiting for stock)"
        CONFIRMED = "confirmed", "confirmed (stock reserved)"
        REJECTED = "rejected", "rejected (stock unavailable)"
        PAID = "paid", "paid"
        SHIPPED = "shipped", "shipped"
        CANCELLED = "cancelled", "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer_id = models.UUIDField(db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Set once orders has asked catalog to release this order's reservation, so that a
    # late or repeated StockReserved does not ask again.
    release_requested_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=40, blank=True)
    # An unpaid confirmed order holds stock until this time; then orders_expire_unpaid cancels it
    # (orders/holds.py). Set at confirmation from ORDERS_PAYMENT_TIMEOUT_SECONDS, shown to the customer.
    payment_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Why a cancelled order was cancelled: "customer" (the owner asked) or "payment_timeout" (not paid in time).
    cancellation_reason = models.CharField(max_length=30, blank=True)
    # A pending order overdue (its saga stalled) has its OrderPlaced announced again, a bounded
    # number of times (orders_resolve_pending), then is rejected with ``rejection_reason``.
    reannounced_count = models.PositiveSmallIntegerField(default=0)
    reannounced_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer_id", "-created_at"], name="orders_order_customer_newest")]

    def __str__(self) -> str:
        return f"order {self.id} ({self.state})"


class OrderLine(models.Model):
    """One book of an order, with the price it was sold at (a snapshot, never recomputed)."""

    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    book_id = models.BigIntegerField()
    title = models.CharField(max_length=500, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    line_total = models.DecimalField(max_digits=12, decimal_places=2)
    # Filled from catalog.StockRejected: why this line could not be reserved.
    rejection_reason = models.CharField(max_length=50, blank=True)
    rejection_available = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "book_id"], name="orders_order_line_one_per_book")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title or self.book_id} @ {self.unit_price}"


class PaymentAttempt(models.Model):
    """One simulated card payment attempt; the card number itself is never stored."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", "approved"
        DECLINED = "declined", "declined"

    order = models.ForeignKey(Order, related_name="payment_attempts", on_delete=models.CASCADE)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    decline_code = models.CharField(max_length=40, blank=True)
    reference = models.CharField(max_length=40, blank=True)
    attempted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.amount} {self.currency} (card …{self.card_last4})"


class IdempotencyRecord(models.Model):
    """The memory behind the ``Idempotency-Key`` header of checkout, per customer and key.

    The unique constraint is what makes a concurrent retry detectable: the first request
    commits an ``in_progress`` row before doing any work, a second one hits the constraint.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "in progress"
        COMPLETED = "completed", "completed"

    customer_id = models.UUIDField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True)
    # Identifies the request that holds an in-progress record, so that a request whose
    # stale record was taken over cannot complete it.
    lock_token = models.UUIDField(default=uuid.uuid4)
    locked_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    order_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "key"], name="orders_idempotency_key_once_per_customer")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class CustomerAccess(CustomerAccessBase):
    """Customers accounts said are deactivated or deleted (and reactivated): whose tokens this module refuses."""

    class Meta:
        verbose_name_plural = "customer access"
