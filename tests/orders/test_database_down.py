"""While orders' database is out of reach, its API says so: 503 with Retry-After and a problem body, never a 500."""

from __future__ import annotations

import pytest
from django.db import connections

from tests.orders.factories import customer_client
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True, databases=["orders", "default"])


@pytest.fixture
def orders_database_down():
    """The orders connection pointed at a database that cannot be reached (SQLite: a missing directory)."""
    connection = connections["orders"]
    saved = dict(connection.settings_dict)
    connection.ensure_connection()
    # Kept aside, not closed: closing the last connection to SQLite's in-memory test database drops it.
    real, connection.connection = connection.connection, None
    if connection.vendor == "postgresql":
        connection.settings_dict["PORT"] = str(free_port())  # nothing listens there: connection refused
    else:
        connection.settings_dict["NAME"] = "/nonexistent/quire/orders.sqlite3"
    try:
        yield
    finally:
        connection.settings_dict.update(saved)
        connection.connection = real


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
