"""Checkout: the cart (or given lines) becomes a pending order priced by orders, and OrderPlaced is recorded."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders import services
from orders.models import Order
from tests.orders.factories import customer_client, new_book_id, outbox, product, staff_client

pytestmark = pytest.mark.django_db(databases=["orders", "default"])

ORDERS = "/api/orders/"
ITEMS = "/api/orders/cart/items/"


def checkout(client, body=None, *, key: str | None = None):
    return client.post(ORDERS, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def fields_of(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def test_checkout_of_the_cart_creates_a_pending_order_with_a_price_snapshot():
    client, customer_id = customer_client()
    dune = product(title="Dune", price="9.99")
    emma = product(title="Emma", price="5.00")
    client.post(ITEMS, {"book_id": dune.book_id, "quantity": 2}, format="json")
    client.post(ITEMS, {"book_id": emma.book_id}, format="json")

    response = checkout(client)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"/api/orders/{body['id']}/"
    assert (body["state"], body["total"], body["currency"], body["item_count"]) == ("pending", "24.98", "EUR", 3)
    assert body["customer_id"] == str(customer_id)
    assert [
        (li["book_id"], li["title"], li["quantity"], li["unit_price"], li["line_total"]) for li in body["lines"]
    ] == [
        (dune.book_id, "Dune", 2, "9.99", "19.98"),
        (emma.book_id, "Emma", 1, "5.00", "5.00"),
    ]
    assert body["actions"] == ["cancel"]
    order = Order.objects.get(pk=body["id"])
    assert order.state == Order.State.PENDING and order.total == Decimal("24.98")
    # The cart is empty after checkout.
    assert client.get("/api/orders/cart/").json()["items"] == []


def test_checkout_records_order_placed_in_the_outbox():
    client, customer_id = customer_client()
    book = product(price="9.99")
    client.post(ITEMS, {"book_id": book.book_id, "quantity": 3}, format="json")

    order_id = checkout(client).json()["id"]

    [message] = outbox("orders.OrderPlaced", aggregate_id=order_id)
    assert message.payload == {
        "order_id": order_id,
        "customer_id": str(customer_id),
        "lines": [{"book_id": book.book_id, "quantity": 3, "unit_price": "9.99"}],
        "total": "29.97",
        "currency": "EUR",
    }


def test_the_snapshot_does_not_follow_later_price_changes():
    client, _ = customer_client()
    book = product(price="10.00")
    order_id = checkout(client, {"lines": [{"book_id": book.book_id, "quantity": 1}]}).json()["id"]

    services.product_state_apply(
        book_id=book.book_id,
        title=book.title,
        price=Decimal("99.00"),
        currency="EUR",
        active=True,
        available=1,
        as_of=timezone.now(),
    )

    body = client.get(f"{ORDERS}{order_id}/").json()
    assert (body["total"], body["lines"][0]["unit_price"]) == ("10.00", "10.00")


def test_checkout_of_given_lines_leaves_the_cart_alone():
    client, _ = customer_client()
    in_cart = product()
    bought = product(price="4.00")
    client.post(ITEMS, {"book_id": in_cart.book_id}, format="json")

    response = checkout(client, {"lines": [{"book_id": bought.book_id, "quantity": 2}]})

    assert response.status_code == 201
    assert [(li["book_id"], li["quantity"]) for li in response.json()["lines"]] == [(bought.book_id, 2)]
    assert response.json()["total"] == "8.00"
    assert [item["book_id"] for item in client.get("/api/orders/cart/").json()["items"]] == [in_cart.book_id]


@pytest.mark.parametrize(
    "field, value",
    [
        ("total", "0.01"),
        ("state", "paid"),
        ("customer_id", "5f0c3f0e-2b7c-4d8e-9a51-0c9c1f4e7a10"),
        ("currency", "USD"),
        ("id", "x"),
    ],
)
def test_a_client_cannot_set_server_owned_fields(field, value):
    client, _ = customer_client()
    book = product(price="10.00")

    response = checkout(client, {"lines": [{"book_id": book.book_id, "quantity": 1}], field: value})

    assert response.status_code == 400
    assert fields_of(response) == {field}
    assert not Order.objects.exists()
    assert outbox("orders.OrderPlaced") == []


@pytest.mark.parametrize("field", ["unit_price", "line_total", "price"])
def test_a_client_cannot_price_a_line(field):
    client, _ = customer_client()
    book = product(price="10.00")

    response = checkout(client, {"lines": [{"book_id": book.book_id, "quantity": 1, field: "0.01"}]})

    assert response.status_code == 400
    assert fields_of(response) == {f"lines[0].{field}"}
    assert not Order.objects.exists()


def test_an_empty_cart_cannot_be_checked_out():
    client, _ = customer_client()

    response = checkout(client)

    assert response.status_code == 400
    assert fields_of(response) == {"cart"}


def test_unknown_and_withdrawn_books_in_lines_are_named():
    client, _ = customer_client()
    good = product()
    withdrawn = product(title="Gone")
    services.product_withdraw(book_id=withdrawn.book_id, as_of=timezone.now())

    response = checkout(
        client,
        {
            "lines": [
                {"book_id": good.book_id, "quantity": 1},
                {"book_id": new_book_id(), "quantity": 1},
                {"book_id": withdrawn.book_id, "quantity": 1},
            ]
        },
    )

    assert response.status_code == 400
    assert fields_of(response) == {"lines[1].book_id", "lines[2].book_id"}
    assert not Order.objects.exists()


def test_a_book_withdrawn_while_in_the_cart_blocks_checkout_and_keeps_the_cart():
    client, _ = customer_client()
    book = product()
    client.post(ITEMS, {"book_id": book.book_id}, format="json")
    services.product_withdraw(book_id=book.book_id, as_of=timezone.now())

    response = checkout(client)

    assert response.status_code == 400
    assert fields_of(response) == {"cart.items[0].book_id"}
    assert len(client.get("/api/orders/cart/").json()["items"]) == 1


@pytest.mark.parametrize(
    "lines, field",
    [
        ([], "lines"),
        ([{"book_id": 1, "quantity": 0}], "lines[0].quantity"),
        ([{"book_id": 1, "quantity": 100}], "lines[0].quantity"),
        ([{"book_id": 1}], "lines[0].quantity"),
        ([{"quantity": 1}], "lines[0].book_id"),
        ("three books", "lines"),
    ],
)
def test_lines_are_validated(lines, field):
    client, _ = customer_client()

    response = checkout(client, {"lines": lines})

    assert response.status_code == 400
    assert field in fields_of(response)


def test_the_same_book_twice_in_lines_is_refused():
    client, _ = customer_client()
    book = product()

    response = checkout(
        client, {"lines": [{"book_id": book.book_id, "quantity": 1}, {"book_id": book.book_id, "quantity": 2}]}
    )

    assert response.status_code == 400
    assert fields_of(response) == {"lines[1].book_id"}


def test_books_in_two_currencies_cannot_share_an_order():
    client, _ = customer_client()
    euro = product(currency="EUR")
    dollar = product(currency="USD")

    response = checkout(
        client, {"lines": [{"book_id": euro.book_id, "quantity": 1}, {"book_id": dollar.book_id, "quantity": 1}]}
    )

    assert response.status_code == 400
    assert fields_of(response) == {"lines"}


def test_checkout_needs_a_customer():
    assert APIClient().post(ORDERS, {}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 401
    assert staff_client().post(ORDERS, {}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 403
