"""orders' public contract: the events it publishes. The only file other modules may import."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from messaging import Event


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    book_id: int
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)


class OrderPlaced(Event):
    """A customer checked out; the order waits for catalog to reserve its stock."""

    event_type = "orders.OrderPlaced"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    lines: list[OrderLine] = Field(min_length=1)
    total: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(min_length=3, max_length=3)


class OrderConfirmed(Event):
    """Stock is reserved: the order is a purchase (what recommendations learns from)."""

    event_type = "orders.OrderConfirmed"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    lines: list[OrderLine] = Field(min_length=1)


class RejectionReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    book_id: int
    reason: str
    requested: int
    available: int


class OrderRejected(Event):
    """Stock could not be reserved; the customer sees the reasons per line."""

    event_type = "orders.OrderRejected"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    reasons: list[RejectionReason]


class OrderPaid(Event):
    event_type = "orders.OrderPaid"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(min_length=3, max_length=3)


class OrderShipped(Event):
    """The order left the warehouse: its reserved stock became a sale."""

    event_type = "orders.OrderShipped"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    lines: list[OrderLine] = Field(min_length=1)


class OrderCancelled(Event):
    """The customer cancelled. ``was_confirmed``: stock had been reserved and must be released."""

    event_type = "orders.OrderCancelled"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    lines: list[OrderLine] = Field(min_length=1)
    was_confirmed: bool


class OrderExpired(Event):
    """A confirmed order was not paid by its deadline: it was cancelled and its stock is released.

    Published together with ``OrderCancelled`` (``was_confirmed=True``), which is what releases
    the stock; this one says why, for whoever tells the customer or counts abandoned orders.
    """

    event_type = "orders.OrderExpired"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    customer_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=30)
    payment_due_at: datetime
    lines: list[OrderLine] = Field(min_length=1)
