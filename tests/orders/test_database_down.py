"""While orders' database is out of reach, its API says so: 503 with Retry-After and a problem body, never a 500."""

from __future__ import annotations

import pytest

from tests.orders.factories import customer_client
from tests.support.databases import database_lost

pytestmark = pytest.mark.django_db(transaction=True, databases=["orders", "default"])


@pytest.fixture
def orders_database_down():
    """The orders connection pointed at a database that cannot be reached."""
    with database_lost("orders"):
        yield


def test_checkout_and_reads_answer_503_with_retry_after_while_the_database_is_down(orders_database_down):
    client, _ = customer_client()
    checkout = {"lines": [{"book_id": 1, "quantity": 1}]}

    for response in (
        client.post("/api/orders/", checkout, format="json", HTTP_IDEMPOTENCY_KEY="k-down"),
        client.get("/api/orders/"),
        client.get("/api/orders/cart/"),
    ):
        assert response.status_code == 503, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response["Retry-After"] == "5"
        body = response.json()
        assert (body["status"], body["code"]) == (503, "database_unavailable")
        assert "nothing was changed" in body["detail"]
