"""catalog's public contract: the events it publishes. The only file other modules may import.

Book events carry the book's whole public state (event-carried state transfer), so a
consumer keeps its own copy without ever calling catalog.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from messaging import Event


class BookState(Event):
    """Fields shared by BookPublished and BookUpdated (not an event by itself)."""

    book_id: int
    isbn13: str | None = None
    title: str
    authors: list[str]
    genres: list[str]
    language: str = ""
    publication_year: int | None = None
    price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    currency: str = Field(min_length=3, max_length=3)
    active: bool
    available: int = Field(ge=0)


class BookPublished(BookState):
    """A book entered the catalog."""

    event_type = "catalog.BookPublished"
    event_version = 1
    aggregate_field = "book_id"


class BookUpdated(BookState):
    """A book's public data changed (price, title, authors, genres, active...)."""

    event_type = "catalog.BookUpdated"
    event_version = 1
    aggregate_field = "book_id"


class BookWithdrawn(Event):
    """A book is no longer sold; it must disappear from every listing and recommendation."""

    event_type = "catalog.BookWithdrawn"
    event_version = 1
    aggregate_field = "book_id"

    book_id: int


class StockChanged(Event):
    """A book's stock changed; ``available`` = ``on_hand`` - ``reserved``."""

    event_type = "catalog.StockChanged"
    event_version = 1
    aggregate_field = "book_id"

    book_id: int
    on_hand: int = Field(ge=0)
    reserved: int = Field(ge=0)
    available: int = Field(ge=0)


class ReservedLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    book_id: int
    quantity: int = Field(gt=0)


class RejectedLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    book_id: int
    requested: int = Field(gt=0)
    available: int = Field(ge=0)
    reason: str  # "out_of_stock", "insufficient_stock", "unknown_book", "withdrawn"


class StockReserved(Event):
    """Stock for every line of an order is held for it."""

    event_type = "catalog.StockReserved"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    lines: list[ReservedLine] = Field(min_length=1)


class StockRejected(Event):
    """Stock could not be held for every line of an order; nothing was held."""

    event_type = "catalog.StockRejected"
    event_version = 1
    aggregate_field = "order_id"

    order_id: uuid.UUID
    lines: list[RejectedLine] = Field(min_length=1)
