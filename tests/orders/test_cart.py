"""The cart: one per customer, priced from orders' product copy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders import services
from orders.models import MAX_LINE_QUANTITY, CartItem
from tests.orders.factories import customer_client, new_book_id, product, staff_client

pytestmark = pytest.mark.django_db(databases=["orders", "default"])

CART = "/api/orders/cart/"
ITEMS = "/api/orders/cart/items/"


def item_url(book_id: int) -> str:
    return f"{ITEMS}{book_id}/"


def fields_of(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def test_an_empty_cart_for_a_new_customer():
    client, customer_id = customer_client()

    response = client.get(CART)

    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == str(customer_id)
    assert body["items"] == [] and body["item_count"] == 0 and body["total"] == "0.00"
    assert body["can_check_out"] is False


def test_add_books_and_view_the_cart_with_prices_and_totals():
    client, _ = customer_client()
    dune = product(title="Dune", price="9.99", available=4)
    emma = product(title="Emma", price="5.00")

    assert client.post(ITEMS, {"book_id": dune.book_id, "quantity": 2}, format="json").status_code == 201
    response = client.post(ITEMS, {"book_id": emma.book_id}, format="json")

    assert response.status_code == 201
    cart = response.json()
    assert [(i["book_id"], i["title"], i["quantity"], i["unit_price"], i["line_total"]) for i in cart["items"]] == [
        (dune.book_id, "Dune", 2, "9.99", "19.98"),
        (emma.book_id, "Emma", 1, "5.00", "5.00"),
    ]
    assert (cart["item_count"], cart["total"], cart["currency"], cart["can_check_out"]) == (3, "24.98", "EUR", True)
    assert client.get(CART).json() == cart


def test_adding_a_book_again_adds_to_its_quantity():
    client, _ = customer_client()
    book = product()
    client.post(ITEMS, {"book_id": book.book_id, "quantity": 2}, format="json")

    response = client.post(ITEMS, {"book_id": book.book_id, "quantity": 3}, format="json")

    assert response.status_code == 200
    assert [item["quantity"] for item in response.json()["items"]] == [5]


def test_the_cart_shows_current_prices():
    client, _ = customer_client()
    book = product(price="10.00")
    client.post(ITEMS, {"book_id": book.book_id, "quantity": 2}, format="json")

    services.product_state_apply(
        book_id=book.book_id,
        title=book.title,
        price=Decimal("8.00"),
        currency="EUR",
        active=True,
        available=3,
        as_of=timezone.now(),
    )

    assert client.get(CART).json()["total"] == "16.00"


def test_change_quantity_and_remove_an_item():
    client, _ = customer_client()
    book = product()
    other = product()
    client.post(ITEMS, {"book_id": book.book_id}, format="json")
    client.post(ITEMS, {"book_id": other.book_id}, format="json")

    response = client.patch(item_url(book.book_id), {"quantity": 4}, format="json")
    assert response.status_code == 200
    assert {i["book_id"]: i["quantity"] for i in response.json()["items"]} == {book.book_id: 4, other.book_id: 1}
    assert client.get(item_url(book.book_id)).json()["quantity"] == 4

    assert client.delete(item_url(book.book_id)).status_code == 204
    assert [i["book_id"] for i in client.get(ITEMS).json()] == [other.book_id]
    assert client.get(item_url(book.book_id)).status_code == 404


def test_clear_the_cart():
    client, customer_id = customer_client()
    client.post(ITEMS, {"book_id": product().book_id}, format="json")

    assert client.delete(CART).status_code == 204

    assert client.get(CART).json()["items"] == []
    assert not CartItem.objects.filter(cart__customer_id=customer_id).exists()


def test_an_unknown_book_is_refused_naming_the_field():
    client, _ = customer_client()

    book_id = new_book_id()

    response = client.post(ITEMS, {"book_id": book_id}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert fields_of(response) == {"book_id"}
    assert response.json()["errors"][0]["message"] == f"No book {book_id} is for sale."


@pytest.mark.parametrize("state", ["withdrawn", "inactive", "partial"])
def test_a_book_not_for_sale_is_refused(state):
    client, _ = customer_client()
    book = product(active=state != "inactive")
    if state == "withdrawn":
        services.product_withdraw(book_id=book.book_id, as_of=timezone.now())
    if state == "partial":
        book = services.product_stock_apply(book_id=new_book_id(), available=5, as_of=timezone.now())

    response = client.post(ITEMS, {"book_id": book.book_id}, format="json")

    assert response.status_code == 400
    assert fields_of(response) == {"book_id"}


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1, "two"])
def test_quantity_is_validated(quantity):
    client, _ = customer_client()
    book = product()

    response = client.post(ITEMS, {"book_id": book.book_id, "quantity": quantity}, format="json")

    assert response.status_code == 400
    assert fields_of(response) == {"quantity"}


def test_quantity_cap_applies_to_the_sum_in_the_cart():
    client, _ = customer_client()
    book = product()
    client.post(ITEMS, {"book_id": book.book_id, "quantity": MAX_LINE_QUANTITY}, format="json")

    response = client.post(ITEMS, {"book_id": book.book_id, "quantity": 1}, format="json")

    assert response.status_code == 400
    assert fields_of(response) == {"quantity"}
    assert client.get(CART).json()["items"][0]["quantity"] == MAX_LINE_QUANTITY


def test_setting_the_quantity_is_validated_and_needs_the_book_in_the_cart():
    client, _ = customer_client()
    book = product()
    client.post(ITEMS, {"book_id": book.book_id}, format="json")

    assert fields_of(client.patch(item_url(book.book_id), {"quantity": 0}, format="json")) == {"quantity"}
    assert client.patch(item_url(product().book_id), {"quantity": 2}, format="json").status_code == 404
    assert client.delete(item_url(new_book_id())).status_code == 404


def test_a_client_cannot_set_the_price_of_a_cart_item():
    client, _ = customer_client()
    book = product(price="30.00")

    response = client.post(ITEMS, {"book_id": book.book_id, "unit_price": "0.01"}, format="json")

    assert response.status_code == 400
    assert fields_of(response) == {"unit_price"}
    assert client.get(CART).json()["items"] == []


def test_each_customer_sees_only_their_own_cart():
    alice, _ = customer_client()
    bob, _ = customer_client()
    book = product()
    alice.post(ITEMS, {"book_id": book.book_id, "quantity": 2}, format="json")

    assert bob.get(CART).json()["items"] == []
    assert bob.get(item_url(book.book_id)).status_code == 404
    assert bob.delete(item_url(book.book_id)).status_code == 404
    assert bob.patch(item_url(book.book_id), {"quantity": 9}, format="json").status_code == 404
    assert alice.get(item_url(book.book_id)).json()["quantity"] == 2


def test_the_cart_needs_a_signed_in_customer():
    assert APIClient().get(CART).status_code == 401
    assert APIClient().post(ITEMS, {"book_id": 1}, format="json").status_code == 401
    # A staff session is not a customer: staff have no cart.
    assert staff_client().get(CART).status_code == 403


def test_a_token_without_the_customer_role_is_refused():
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["sub"] = "c0ffee00-0000-4000-8000-000000000000"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get(CART).status_code == 403


def test_a_withdrawn_book_in_the_cart_is_flagged_and_blocks_checkout():
    client, _ = customer_client()
    book = product()
    client.post(ITEMS, {"book_id": book.book_id}, format="json")

    services.product_withdraw(book_id=book.book_id, as_of=timezone.now())

    cart = client.get(CART).json()
    assert cart["items"][0]["for_sale"] is False
    assert "no longer sold" in cart["items"][0]["notice"]
    assert cart["can_check_out"] is False and cart["total"] == "0.00"


def test_the_orders_api_schema_renders_every_endpoint():
    response = APIClient().get("/api/orders/schema/?format=json")

    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/api/orders/",
        "/api/orders/{order_id}/",
        "/api/orders/{order_id}/pay/",
        "/api/orders/{order_id}/cancel/",
        "/api/orders/{order_id}/ship/",
        "/api/orders/cart/",
        "/api/orders/cart/items/",
        "/api/orders/cart/items/{book_id}/",
    } <= paths
