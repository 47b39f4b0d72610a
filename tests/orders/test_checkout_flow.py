"""The whole shop through HTTP in the one-process topology: accounts, catalog and orders together.

Nothing is faked: books are created by staff through catalog's API, customers register and
sign in through accounts', and every event travels through the outboxes and the in-process
transport to the real handlers of each module.
"""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from messaging.models import DeadLetter, OutboxMessage
from tests.orders.factories import DECLINED_CARD, VALID_CARD, staff_client

ALL_DATABASES = ["default", "accounts", "catalog", "orders", "recommendations"]
pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

PASSWORD = "a-long-passphrase-for-tests"


@pytest.fixture
def staff():
    return staff_client()


def sign_up(name: str = "Ada") -> APIClient:
    """Register a customer, sign in, and return a client that carries the access token."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    anonymous = APIClient()
    registered = anonymous.post(
        "/api/accounts/register/", {"email": email, "password": PASSWORD, "name": name}, format="json"
    )
    assert registered.status_code == 202, registered.json()
    signed_in = anonymous.post("/api/accounts/token/", {"email": email, "password": PASSWORD}, format="json")
    assert signed_in.status_code == 200, signed_in.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.json()['access']}")
    return client


def create_book(staff: APIClient, *, title: str, price: str, on_hand: int, author: str = "Frank Herbert") -> int:
    created_author = staff.post("/api/catalog/authors/", {"name": f"{author} {uuid.uuid4().hex[:6]}"}, format="json")
    assert created_author.status_code == 201, created_author.json()
    book = staff.post(
        "/api/catalog/books/",
        {
            "title": title,
            "author_ids": [created_author.json()["id"]],
            "price": price,
            "currency": "EUR",
            "on_hand": on_hand,
        },
        format="json",
    )
    assert book.status_code == 201, book.json()
    return book.json()["id"]


def stock_of(staff: APIClient, book_id: int) -> tuple[int, int, int]:
    stock = staff.get(f"/api/catalog/books/{book_id}/stock/").json()
    return stock["on_hand"], stock["reserved"], stock["available"]


def checkout(client: APIClient, body: dict | None = None):
    return client.post("/api/orders/", body or {}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


def assert_every_event_delivered_cleanly():
    for alias in ("accounts", "catalog", "orders"):
        assert not OutboxMessage.objects.using(alias).filter(published_at__isnull=True).exists(), alias
        assert list(DeadLetter.objects.using(alias).values_list("event_type", "error")) == [], alias


def test_browse_buy_pay_and_ship(staff):
    dune = create_book(staff, title="Dune", price="9.99", on_hand=5)
    emma = create_book(staff, title="Emma", price="5.00", on_hand=3, author="Jane Austen")
    customer = sign_up("Ada")

    found = customer.get("/api/catalog/books/", {"search": "dune"})
    assert found.status_code == 200
    assert [book["id"] for book in found.json()["results"]] == [dune]

    assert customer.post("/api/orders/cart/items/", {"book_id": dune, "quantity": 2}, format="json").status_code == 201
    cart = customer.post("/api/orders/cart/items/", {"book_id": emma}, format="json").json()
    assert (cart["total"], cart["item_count"], cart["can_check_out"]) == ("24.98", 3, True)

    placed = checkout(customer)
    assert placed.status_code == 201, placed.json()
    assert placed.json()["state"] == "pending"  # the response shows the order as it was created
    order_url = f"/api/orders/{placed.json()['id']}/"

    # catalog reserved the stock and orders confirmed, both through events.
    order = customer.get(order_url).json()
    assert order["state"] == "confirmed"
    assert [(line["book_id"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        (dune, 2, "9.99"),
        (emma, 1, "5.00"),
    ]
    assert stock_of(staff, dune) == (5, 2, 3)
    assert customer.get(f"/api/catalog/books/{dune}/").json()["available"] == 3
    # orders' own copy of the book followed catalog's StockChanged.
    customer.post("/api/orders/cart/items/", {"book_id": dune}, format="json")
    assert customer.get(f"/api/orders/cart/items/{dune}/").json()["available"] == 3
    customer.delete("/api/orders/cart/")

    declined = customer.post(f"{order_url}pay/", DECLINED_CARD, format="json")
    assert declined.status_code == 402
    assert customer.get(order_url).json()["state"] == "confirmed"

    paid = customer.post(f"{order_url}pay/", VALID_CARD, format="json")
    assert paid.status_code == 200 and paid.json()["state"] == "paid"

    assert customer.post(f"{order_url}ship/").status_code == 403
    shipped = staff.post(f"{order_url}ship/")
    assert shipped.status_code == 200 and shipped.json()["state"] == "shipped"

    # The held copies became a sale: fewer on hand, none held.
    assert stock_of(staff, dune) == (3, 0, 3)
    assert stock_of(staff, emma) == (2, 0, 2)
    assert [o["id"] for o in customer.get("/api/orders/").json()["results"]] == [placed.json()["id"]]
    assert_every_event_delivered_cleanly()


def test_an_order_for_more_than_the_stock_is_rejected_with_reasons(staff):
    scarce = create_book(staff, title="The Scarce Folio", price="80.00", on_hand=1)
    plenty = create_book(staff, title="Plenty", price="4.00", on_hand=50)
    customer = sign_up("Grace")

    placed = checkout(customer, {"lines": [{"book_id": scarce, "quantity": 3}, {"book_id": plenty, "quantity": 1}]})
    assert placed.status_code == 201, placed.json()

    order = customer.get(f"/api/orders/{placed.json()['id']}/").json()
    assert order["state"] == "rejected"
    rejections = {line["book_id"]: line["rejection"] for line in order["lines"]}
    assert rejections[scarce]["reason"] == "insufficient_stock"
    assert (rejections[scarce]["requested"], rejections[scarce]["available"]) == (3, 1)
    assert rejections[plenty] is None
    # All or nothing: not even the available book was held.
    assert stock_of(staff, scarce) == (1, 0, 1)
    assert stock_of(staff, plenty) == (50, 0, 50)
    assert customer.post(f"/api/orders/{order['id']}/pay/", VALID_CARD, format="json").status_code == 409
    assert_every_event_delivered_cleanly()


def test_cancelling_a_confirmed_order_puts_the_stock_back(staff):
    book = create_book(staff, title="Middlemarch", price="12.00", on_hand=4, author="George Eliot")
    customer = sign_up("Mary")

    placed = checkout(customer, {"lines": [{"book_id": book, "quantity": 3}]})
    order_url = f"/api/orders/{placed.json()['id']}/"
    assert customer.get(order_url).json()["state"] == "confirmed"
    assert stock_of(staff, book) == (4, 3, 1)

    cancelled = customer.post(f"{order_url}cancel/")

    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert stock_of(staff, book) == (4, 0, 4)
    assert customer.post(f"{order_url}pay/", VALID_CARD, format="json").status_code == 409
    assert_every_event_delivered_cleanly()


def test_a_withdrawn_book_can_no_longer_be_bought(staff):
    book = create_book(staff, title="Withdrawn Soon", price="7.00", on_hand=2)
    customer = sign_up("Alan")
    assert customer.post("/api/orders/cart/items/", {"book_id": book}, format="json").status_code == 201

    assert staff.post(f"/api/catalog/books/{book}/withdraw/").status_code == 200

    assert customer.get("/api/orders/cart/").json()["can_check_out"] is False
    refused = checkout(customer)
    assert refused.status_code == 400
    assert [error["field"] for error in refused.json()["errors"]] == ["cart.items[0].book_id"]
    again = customer.post("/api/orders/cart/items/", {"book_id": book}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "book_id"
    assert_every_event_delivered_cleanly()
