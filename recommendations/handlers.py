"""recommendations learns from events only: purchases from orders, books from catalog.

Each handler runs in a transaction on the recommendations database with its inbox row,
so a redelivered event does nothing; the services are idempotent besides (a second
confirmation of a known order, or one that a cancellation overtook, teaches nothing).
"""

from __future__ import annotations

from catalog.contracts import BookPublished, BookUpdated, BookWithdrawn
from messaging import handles, handles_batch, occurred_at
from orders.contracts import OrderCancelled, OrderConfirmed
from recommendations import services


@handles(OrderConfirmed)
def purchases_record_on_order_confirmed(event: OrderConfirmed) -> None:
    services.purchases_record(
        order_id=event.order_id,
        customer_id=event.customer_id,
        lines=[(line.book_id, line.quantity) for line in event.lines],
        purchased_at=occurred_at(event),
    )


@handles(OrderCancelled)
def purchases_cancel_on_order_cancelled(event: OrderCancelled) -> None:
    # An order cancelled before confirmation never taught us anything.
    if event.was_confirmed:
        services.purchases_cancel(
            order_id=event.order_id,
            customer_id=event.customer_id,
            lines=[(line.book_id, line.quantity) for line in event.lines],
            cancelled_at=occurred_at(event),
        )


def _book_copy(event: BookPublished | BookUpdated) -> services.BookCopy:
    return services.BookCopy(
        book_id=event.book_id,
        title=event.title,
        authors=event.authors,
        genres=event.genres,
        language=event.language,
        active=event.active,
    )


def _book_upsert(event: BookPublished | BookUpdated) -> None:
    services.book_upsert(
        book_id=event.book_id,
        title=event.title,
        authors=event.authors,
        genres=event.genres,
        language=event.language,
        active=event.active,
    )


@handles(BookPublished)
def book_upsert_on_book_published(event: BookPublished) -> None:
    _book_upsert(event)


@handles_batch(book_upsert_on_book_published)
def books_upsert_on_books_published(events: list[BookPublished]) -> None:
    services.books_upsert(books=[_book_copy(event) for event in events])


@handles(BookUpdated)
def book_upsert_on_book_updated(event: BookUpdated) -> None:
    _book_upsert(event)


@handles_batch(book_upsert_on_book_updated)
def books_upsert_on_books_updated(events: list[BookUpdated]) -> None:
    services.books_upsert(books=[_book_copy(event) for event in events])


@handles(BookWithdrawn)
def book_withdraw_on_book_withdrawn(event: BookWithdrawn) -> None:
    services.book_withdraw(book_id=event.book_id)
