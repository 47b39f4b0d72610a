"""recommendations learns from events only: purchases from orders, books from catalog.

Each handler runs in a transaction on the recommendations database with its inbox row,
so a redelivered event does nothing; the services are idempotent besides (a second
confirmation of a known order, or one that a cancellation overtook, teaches nothing).
"""

from __future__ import annotations

from django.utils import timezone

from catalog.contracts import BookPublished, BookUpdated, BookWithdrawn
from messaging import Event, handles
from orders.contracts import OrderCancelled, OrderConfirmed
from recommendations import services


def _occurred_at(event: Event):
    return event.envelope.occurred_at if event.envelope is not None else timezone.now()


@handles(OrderConfirmed)
def recommendations_learn_purchase(event: OrderConfirmed) -> None:
    services.purchases_record(
        order_id=event.order_id,
        customer_id=event.customer_id,
        lines=[(line.book_id, line.quantity) for line in event.lines],
        purchased_at=_occurred_at(event),
    )


@handles(OrderCancelled)
def recommendations_forget_cancelled_purchase(event: OrderCancelled) -> None:
    # An order cancelled before confirmation never taught us anything.
    if event.was_confirmed:
        services.purchases_cancel(
            order_id=event.order_id,
            customer_id=event.customer_id,
            lines=[(line.book_id, line.quantity) for line in event.lines],
            cancelled_at=_occurred_at(event),
        )


@handles(BookPublished, BookUpdated)
def recommendations_copy_book(event: BookPublished | BookUpdated) -> None:
    services.book_upsert(
        book_id=event.book_id,
        title=event.title,
        authors=event.authors,
        genres=event.genres,
        language=event.language,
        active=event.active,
    )


@handles(BookWithdrawn)
def recommendations_withdraw_book(event: BookWithdrawn) -> None:
    services.book_withdraw(book_id=event.book_id)
