"""recommendations' own tables: its copy of the books, the purchases it learnt, and the model.

Everything here comes from events (catalog's book events, orders' confirmations and
cancellations); nothing is read from another module. The model lives in two forms:
``ModelSnapshot`` (a checkpoint of the engine's arrays) and ``ModelChange`` (the journal
of changes since), so that any process rebuilds the same in-memory model lazily and
follows new changes by reading only the journal rows it has not seen.
"""

from __future__ import annotations

import uuid

from django.db import models

from web.customer_access import CustomerAccessBase


class RecoBook(models.Model):
    """What recommendations knows of a book, from catalog's BookPublished/BookUpdated/BookWithdrawn."""

    book_id = models.BigIntegerField(primary_key=True)
    title = models.CharField(max_length=500, blank=True)
    authors = models.JSONField(default=list, blank=True)
    genres = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=20, blank=True)
    active = models.BooleanField(default=True, db_index=True, help_text="False: withdrawn, never recommended.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["book_id"]
        verbose_name = "book"

    def __str__(self) -> str:
        return f"#{self.book_id} {self.title}"


class Purchase(models.Model):
    """One line of a confirmed order, as learnt from orders.OrderConfirmed.

    A cancellation (OrderCancelled with was_confirmed) marks the order's lines cancelled;
    the rows stay, so that a late or repeated confirmation of that order is ignored.
    """

    order_id = models.UUIDField()
    customer_id = models.UUIDField()
    book_id = models.BigIntegerField(db_index=True)
    quantity = models.PositiveIntegerField()
    purchased_at = models.DateTimeField(db_index=True)
    cancelled = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["order_id", "book_id"], name="recommendations_purchase_line")]
        indexes = [models.Index(fields=["customer_id", "book_id"], name="reco_purchase_owner")]

    def __str__(self) -> str:
        return f"order {self.order_id}: book #{self.book_id} x{self.quantity}"


class ModelState(models.Model):
    """The one row every writer locks: it orders the journal and tells readers what changed.

    ``generation`` changes when the model is rebuilt (processes then reload from the new
    snapshot); ``version`` counts writing transactions; the journal up to ``journal_floor``
    has been folded into a snapshot and deleted.
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    generation = models.UUIDField(default=uuid.uuid4)
    version = models.BigIntegerField(default=0)
    journal_floor = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "model state"

    def __str__(self) -> str:
        return f"generation {str(self.generation)[:8]}, version {self.version}"


class ModelChange(models.Model):
    """One change to the model, in the order writers committed it (the journal)."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "purchase"
        CANCELLATION = "cancellation", "cancellation"
        BOOK = "book", "book metadata"

    version = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    book_id = models.BigIntegerField()
    customer_id = models.UUIDField(null=True, blank=True)
    purchased_at = models.DateTimeField(null=True, blank=True)
    ownership_changed = models.BooleanField(
        default=False, help_text="The customer gained (purchase) or lost (cancellation) their only live copy."
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "id"]
        verbose_name = "model change"

    def __str__(self) -> str:
        return f"v{self.version} {self.kind} book #{self.book_id}"


class ModelSnapshot(models.Model):
    """The engine's arrays at one version (numpy .npz), so a process starts without replaying history."""

    generation = models.UUIDField(db_index=True)
    version = models.BigIntegerField()
    format = models.PositiveSmallIntegerField()
    data = models.BinaryField()
    size_bytes = models.PositiveBigIntegerField(default=0)
    books = models.PositiveIntegerField(default=0)
    customers = models.PositiveIntegerField(default=0)
    owned_pairs = models.PositiveBigIntegerField(default=0)
    co_pairs = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "model snapshot"

    def __str__(self) -> str:
        return f"snapshot v{self.version} ({self.size_bytes:,} bytes)"


class CustomerAccess(CustomerAccessBase):
    """Customers accounts said are deactivated or deleted (and reactivated): whose tokens this module refuses."""

    class Meta:
        verbose_name_plural = "customer access"
