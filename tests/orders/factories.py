"""Plain factory functions for orders tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from catalog.contracts import BookPublished, StockRejected, StockReserved
from messaging import Envelope, Event
from messaging.delivery import Outcome
from messaging.dispatch import dispatch
from messaging.models import OutboxMessage
from orders import services
from orders.models import Order, Product

VALID_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
DECLINED_CARD = {"card_number": "4000000000000002", "expiry": "12/39", "cvc": "123"}

_next_book_id = iter(range(900_000, 10_000_000))


def new_book_id() -> int:
    return next(_next_book_id)


def customer_token(customer_id: uuid.UUID | None = None) -> tuple[uuid.UUID, str]:
    customer_id = customer_id or uuid.uuid4()
    token = AccessToken()
    token["sub"] = str(customer_id)
    token["role"] = "customer"
    return customer_id, str(token)


def customer_client(customer_id: uuid.UUID | None = None) -> tuple[APIClient, uuid.UUID]:
    customer_id, token = customer_token(customer_id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, customer_id


def staff_client(username: str = "operator") -> APIClient:
    user = get_user_model().objects.create_user(username=username, password=None, is_staff=True)
    client = APIClient()
    client.force_login(user)
    return client


def product(
    *,
    book_id: int | None = None,
    title: str = "The Left Hand of Darkness",
    price: str | Decimal = "12.50",
    currency: str = "EUR",
    active: bool = True,
    available: int = 10,
) -> Product:
    """A book in orders' product copy, as if catalog had published it."""
    return services.product_state_apply(
        book_id=book_id or new_book_id(),
        title=title,
        price=Decimal(price),
        currency=currency,
        active=active,
        available=available,
        as_of=timezone.now(),
    )


def book_published(*, book_id: int, price: str = "9.99", title: str = "Dune", active: bool = True, available: int = 3):
    return BookPublished(
        book_id=book_id,
        title=title,
        authors=["Frank Herbert"],
        genres=["science-fiction"],
        price=Decimal(price),
        currency="EUR",
        active=active,
        available=available,
    )


def envelope_of(event: Event, *, occurred_at: datetime | None = None, event_id: uuid.UUID | None = None) -> Envelope:
    return Envelope(
        event_type=type(event).event_type,
        event_version=type(event).event_version,
        aggregate_id=event.aggregate_id,
        producer=type(event).producer(),
        payload=event.to_payload(),
        occurred_at=occurred_at or timezone.now(),
        event_id=event_id or uuid.uuid4(),
    )


def deliver(event: Event, *, occurred_at: datetime | None = None, envelope: Envelope | None = None) -> list[Outcome]:
    """Hand an event to orders' handlers only (inbox, retries and all), as the transport would."""
    return dispatch(envelope or envelope_of(event, occurred_at=occurred_at), ("orders",))


def place_order(customer_id: uuid.UUID, *books: tuple[Product, int]) -> Order:
    return services.order_place(
        customer_id=customer_id,
        lines=[services.LineRequest(book_id=book.book_id, quantity=quantity) for book, quantity in books],
    )


def reserve(order: Order) -> list[Outcome]:
    return deliver(
        StockReserved(
            order_id=order.id,
            lines=[{"book_id": line.book_id, "quantity": line.quantity} for line in order.lines.all()],
        )
    )


def reject(order: Order, *, reason: str = "insufficient_stock", available: int = 0) -> list[Outcome]:
    return deliver(
        StockRejected(
            order_id=order.id,
            lines=[
                {"book_id": line.book_id, "requested": line.quantity, "available": available, "reason": reason}
                for line in order.lines.all()
            ],
        )
    )


def confirmed_order(customer_id: uuid.UUID, *books: tuple[Product, int]) -> Order:
    order = place_order(customer_id, *books)
    assert reserve(order) == [Outcome.APPLIED]
    order.refresh_from_db()
    return order


def paid_order(customer_id: uuid.UUID, *books: tuple[Product, int]) -> Order:
    from orders.payments import Card

    order = confirmed_order(customer_id, *books)
    services.order_pay(
        order_id=order.id,
        customer_id=customer_id,
        card=Card(number="4242424242424242", exp_month=12, exp_year=2039, cvc="123"),
    )
    order.refresh_from_db()
    return order


def outbox(event_type: str, *, aggregate_id=None) -> list[OutboxMessage]:
    messages = OutboxMessage.objects.using("orders").filter(event_type=event_type)
    if aggregate_id is not None:
        messages = messages.filter(aggregate_id=str(aggregate_id))
    return list(messages.order_by("id"))
