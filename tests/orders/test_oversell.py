"""Many customers race for the last copies, on a real PostgreSQL: never more sold than there are.

Runs in the PostgreSQL stage of `make test` (the *DATABASE_URL variables point at the server
that scripts/dev/postgres.sh started).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, connections

from catalog import services as catalog_services
from catalog.models import Stock, StockReservation
from orders.models import Order
from tests.orders.factories import customer_client

ALL_DATABASES = ["default", "accounts", "catalog", "orders", "recommendations"]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]

COPIES = 5
CUSTOMERS = 16


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connections["catalog"].vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run through `make test`, which starts one")


def run_in_threads(count, work):
    """Start ``count`` calls of ``work(i)`` at the same moment; each thread closes its connections."""
    barrier = threading.Barrier(count)

    def call(index):
        barrier.wait()
        try:
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def book_with_stock(title: str, copies: int):
    author = catalog_services.author_create(name=f"Author of {title}")
    return catalog_services.book_create(title=title, authors=[author], price=Decimal("10.00"), on_hand=copies)


def test_concurrent_checkouts_confirm_exactly_as_many_orders_as_there_are_copies(settings):
    # Every checkout must reach catalog's reservation, the race under test: the shop-wide share of unpaid
    # copies (tests/orders/test_unpaid_holds.py) would refuse most of them in orders first.
    settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK = 0
    book = book_with_stock("The Last Copies", COPIES)

    def checkout(index):
        client, _ = customer_client()
        response = client.post(
            "/api/orders/",
            {"lines": [{"book_id": book.id, "quantity": 1}]},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        return response.status_code

    statuses = run_in_threads(CUSTOMERS, checkout)

    assert statuses == [201] * CUSTOMERS
    orders = Order.objects.using("orders")
    assert orders.count() == CUSTOMERS
    assert orders.filter(state="confirmed").count() == COPIES
    assert orders.filter(state="rejected").count() == CUSTOMERS - COPIES
    stock = Stock.objects.using("catalog").get(book=book)
    assert (stock.on_hand, stock.reserved) == (COPIES, COPIES)


def test_concurrent_multi_line_reservations_never_oversell_any_book():
    # Lines in opposite orders across orders: the reservation must neither deadlock nor oversell.
    first, second = book_with_stock("Left", 7), book_with_stock("Right", 4)

    def reserve(index):
        lines = [(first.id, 1), (second.id, 1)]
        if index % 2:
            lines.reverse()
        reservation = catalog_services.stock_reserve(order_id=uuid.uuid4(), lines=lines)
        return reservation.state

    states = run_in_threads(12, reserve)

    held = StockReservation.objects.using("catalog").filter(state="reserved").count()
    assert held == 4, states
    for book, copies in ((first, 7), (second, 4)):
        stock = Stock.objects.using("catalog").get(book=book)
        assert stock.on_hand == copies
        assert stock.reserved == 4
        assert stock.on_hand - stock.reserved >= 0


def test_the_database_itself_refuses_negative_stock():
    from django.db import IntegrityError, transaction

    book = book_with_stock("Guarded", 1)
    with pytest.raises(IntegrityError), transaction.atomic(using="catalog"):
        Stock.objects.using("catalog").filter(book=book).update(reserved=2)
    assert connection.vendor == "postgresql"
