"""One customer's concurrent checkouts on a real PostgreSQL: together they never pass the cap on unpaid copies.

Runs in the PostgreSQL stage of `make test`. The cap is checked under the lock of the customer's
cart row, so checkouts of one customer apply one after the other; without it, each would count
the others' orders as not there yet.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connections

from orders.models import Order, OrderLine
from tests.orders.factories import customer_client
from tests.orders.test_oversell import ALL_DATABASES, book_with_stock, run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]

PER_BOOK = 4
ATTEMPTS = 10


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connections["orders"].vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run through `make test`, which starts one")


def test_concurrent_checkouts_of_one_customer_hold_at_most_the_cap(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = PER_BOOK
    settings.ORDERS_MAX_UNPAID_COPIES = 0
    book = book_with_stock("Much Wanted", 100)  # plenty: every order within the cap is confirmed and stays so
    client, customer_id = customer_client()

    def checkout(index):
        response = client.post(
            "/api/orders/",
            {"lines": [{"book_id": book.id, "quantity": 1}]},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert response.status_code == 201 or response.json()["code"] == "unpaid_hold_limit", response.json()
        return response.status_code

    statuses = run_in_threads(ATTEMPTS, checkout)

    assert sorted(statuses) == [201] * PER_BOOK + [409] * (ATTEMPTS - PER_BOOK), statuses
    assert Order.objects.filter(customer_id=customer_id).count() == PER_BOOK
    assert set(Order.objects.filter(customer_id=customer_id).values_list("state", flat=True)) == {"confirmed"}
    assert sum(OrderLine.objects.filter(order__customer_id=customer_id).values_list("quantity", flat=True)) == PER_BOOK
