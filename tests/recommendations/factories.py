"""Plain factory functions for recommendations tests: contract events and callers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from catalog.contracts import BookPublished, BookUpdated, BookWithdrawn
from messaging import Envelope, Event
from orders.contracts import OrderCancelled, OrderConfirmed, OrderLine
from recommendations import handlers

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def book_published(
    book_id: int,
    title: str = "Untitled",
    *,
    authors: tuple[str, ...] = ("Anonymous",),
    genres: tuple[str, ...] = (),
    language: str = "eng",
    active: bool = True,
    event_class: type[BookPublished] | type[BookUpdated] = BookPublished,
    price: str = "9.99",
):
    return event_class(
        book_id=book_id,
        title=title,
        authors=list(authors),
        genres=list(genres),
        language=language,
        price=Decimal(price),
        currency="EUR",
        active=active,
        available=5,
    )


def book_updated(book_id: int, title: str = "Untitled", **fields) -> BookUpdated:
    return book_published(book_id, title, event_class=BookUpdated, **fields)


def order_confirmed(customer_id: uuid.UUID, *book_ids: int, order_id: uuid.UUID | None = None) -> OrderConfirmed:
    return OrderConfirmed(
        order_id=order_id or uuid.uuid4(),
        customer_id=customer_id,
        lines=[OrderLine(book_id=book_id, quantity=1, unit_price=Decimal("9.99")) for book_id in book_ids],
    )


def order_cancelled(confirmed: OrderConfirmed, *, was_confirmed: bool = True) -> OrderCancelled:
    return OrderCancelled(
        order_id=confirmed.order_id,
        customer_id=confirmed.customer_id,
        lines=list(confirmed.lines),
        was_confirmed=was_confirmed,
    )


def arrived(event: Event, *, at: datetime = NOW) -> Event:
    """The event as a handler receives it: inside an envelope that says when it happened."""
    envelope = Envelope(
        event_type=type(event).event_type,
        event_version=type(event).event_version,
        aggregate_id=event.aggregate_id,
        producer=type(event).producer(),
        payload=event.to_payload(),
        occurred_at=at,
    )
    return type(event).from_payload(envelope.payload, envelope)


_HANDLERS = {
    "catalog.BookPublished": handlers.book_upsert_on_book_published,
    "catalog.BookUpdated": handlers.book_upsert_on_book_updated,
    "catalog.BookWithdrawn": handlers.book_withdraw_on_book_withdrawn,
    "orders.OrderConfirmed": handlers.purchases_record_on_order_confirmed,
    "orders.OrderCancelled": handlers.purchases_cancel_on_order_cancelled,
}


def handle(*events: Event, at: datetime = NOW, step: timedelta = timedelta(minutes=1)) -> None:
    """Run our handlers directly on events (unit tests; no outbox, no inbox)."""
    for event in events:
        _HANDLERS[type(event).event_type](arrived(event, at=at))
        at += step


def withdrawn(book_id: int) -> BookWithdrawn:
    return BookWithdrawn(book_id=book_id)


def customer_client(customer_id: uuid.UUID | None = None) -> tuple[APIClient, uuid.UUID]:
    customer_id = customer_id or uuid.uuid4()
    token = AccessToken()
    token["sub"] = str(customer_id)
    token["role"] = "customer"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, customer_id


def shelf() -> list[BookPublished]:
    """A small catalogue with content structure: two series, an author, genres."""
    return [
        book_published(
            1,
            "The Fellowship of the Ring (The Lord of the Rings, #1)",
            authors=("J.R.R. Tolkien",),
            genres=("fantasy",),
        ),
        book_published(
            2, "The Two Towers (The Lord of the Rings, #2)", authors=("J.R.R. Tolkien",), genres=("fantasy",)
        ),
        book_published(
            3, "The Return of the King (The Lord of the Rings, #3)", authors=("J.R.R. Tolkien",), genres=("fantasy",)
        ),
        book_published(4, "The Hobbit", authors=("J.R.R. Tolkien",), genres=("fantasy", "children")),
        book_published(5, "Dune", authors=("Frank Herbert",), genres=("science-fiction",)),
        book_published(6, "Dune Messiah (Dune, #2)", authors=("Frank Herbert",), genres=("science-fiction",)),
        book_published(7, "Pride and Prejudice", authors=("Jane Austen",), genres=("romance", "classics")),
        book_published(8, "Emma", authors=("Jane Austen",), genres=("romance", "classics")),
        book_published(9, "The Joy of Cooking", authors=("Irma S. Rombauer",), genres=("cookbooks",)),
        book_published(10, "Salt, Fat, Acid, Heat", authors=("Samin Nosrat",), genres=("cookbooks",)),
    ]
