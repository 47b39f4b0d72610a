"""orders' reactions to catalog's events: its product copy, and the checkout saga.

Each handler runs in a transaction on the orders database with its inbox row, so a
redelivered event is skipped. Events of different aggregates may arrive in any order,
and one aggregate's events may arrive late: book events are applied by their envelope
time (older than what is applied changes nothing), order events by the order's state.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from catalog.contracts import BookPublished, BookUpdated, BookWithdrawn, StockChanged, StockRejected, StockReserved
from messaging import Event, handles
from orders import services


def _occurred_at(event: Event) -> datetime:
    envelope = event.envelope
    return envelope.occurred_at if envelope is not None else timezone.now()


@handles(BookPublished, BookUpdated)
def product_copy_on_book_state(event: BookPublished | BookUpdated) -> None:
    services.product_state_apply(
        book_id=event.book_id,
        title=event.title,
        price=event.price,
        currency=event.currency,
        active=event.active,
        available=event.available,
        as_of=_occurred_at(event),
    )


@handles(BookWithdrawn)
def product_copy_on_book_withdrawn(event: BookWithdrawn) -> None:
    services.product_withdraw(book_id=event.book_id, as_of=_occurred_at(event))


@handles(StockChanged)
def product_copy_on_stock_changed(event: StockChanged) -> None:
    services.product_stock_apply(book_id=event.book_id, available=event.available, as_of=_occurred_at(event))


@handles(StockReserved)
def order_confirm_on_stock_reserved(event: StockReserved) -> None:
    services.order_confirm(order_id=event.order_id)


@handles(StockRejected)
def order_reject_on_stock_rejected(event: StockRejected) -> None:
    services.order_reject(
        order_id=event.order_id,
        rejected_lines=[
            services.RejectedLineInfo(
                book_id=line.book_id, reason=line.reason, requested=line.requested, available=line.available
            )
            for line in event.lines
        ],
    )
