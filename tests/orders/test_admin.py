"""orders in the Django admin: list views, filters, search, and the ship action."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import Cart, Order
from tests.orders.factories import outbox, paid_order, place_order, product

pytestmark = pytest.mark.django_db(databases=["orders", "default"])

CHANGELIST = "/admin/orders/order/"


@pytest.fixture
def admin_client_():
    user = get_user_model().objects.create_superuser(username="boss", password=None, email="b@example.com")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orders/order/",
        "/admin/orders/order/?state__exact=paid",
        "/admin/orders/order/?created_at__year=2026",
        "/admin/orders/cart/",
        "/admin/orders/product/",
        "/admin/orders/paymentattempt/",
        "/admin/orders/idempotencyrecord/",
    ],
)
def test_every_list_view_loads(admin_client_, path):
    customer_id = uuid.uuid4()
    paid_order(customer_id, (product(), 1))
    services.cart_item_add(customer_id=customer_id, book_id=product().book_id)

    assert admin_client_.get(path).status_code == 200


def test_search_orders_by_id_and_customer_id(admin_client_):
    book = product()
    wanted = place_order(uuid.uuid4(), (book, 1))
    other = place_order(uuid.uuid4(), (book, 1))

    by_id = admin_client_.get(CHANGELIST, {"q": str(wanted.id)})
    by_customer = admin_client_.get(CHANGELIST, {"q": str(wanted.customer_id)})
    by_junk = admin_client_.get(CHANGELIST, {"q": "not-a-uuid"})

    for response in (by_id, by_customer):
        assert list(response.context["cl"].result_list) == [wanted]
    assert by_junk.status_code == 200 and other not in by_junk.context["cl"].result_list


def test_an_order_page_shows_its_lines(admin_client_):
    order = place_order(uuid.uuid4(), (product(title="Middlemarch"), 1))

    response = admin_client_.get(f"/admin/orders/order/{order.id}/change/")

    assert response.status_code == 200
    assert "Middlemarch" in response.content.decode()


def test_the_ship_action_ships_paid_orders_and_reports_the_others(admin_client_):
    book = product()
    paid = paid_order(uuid.uuid4(), (book, 1))
    pending = place_order(uuid.uuid4(), (book, 1))

    response = admin_client_.post(
        CHANGELIST, {"action": "ship", "_selected_action": [str(paid.id), str(pending.id)]}, follow=True
    )

    assert response.status_code == 200
    assert Order.objects.get(pk=paid.id).state == "shipped"
    assert Order.objects.get(pk=pending.id).state == "pending"
    texts = [str(message) for message in response.context["messages"]]
    assert "1 order(s) shipped." in texts
    assert any("Only paid orders can be shipped" in text for text in texts)
    assert len(outbox("orders.OrderShipped")) == 1


def test_orders_cannot_be_edited_or_deleted_in_the_admin(admin_client_):
    order = place_order(uuid.uuid4(), (product(), 1))

    admin_client_.post(f"/admin/orders/order/{order.id}/change/", {"state": "paid"})

    assert Order.objects.get(pk=order.id).state == "pending"
    assert admin_client_.get(f"/admin/orders/order/{order.id}/delete/").status_code == 403


def test_a_carts_page_shows_its_items_titles_in_the_same_queries_however_many_items(admin_client_):
    def queries_for_a_cart_of(count: int) -> tuple[int, str]:
        customer_id = uuid.uuid4()
        for n in range(count):
            services.cart_item_add(customer_id=customer_id, book_id=product(title=f"Book {count}-{n}").book_id)
        cart = Cart.objects.get(customer_id=customer_id)
        with CaptureQueriesContext(connections["orders"]) as queries:
            page = admin_client_.get(f"/admin/orders/cart/{cart.pk}/change/")
        assert page.status_code == 200
        return len(queries), page.content.decode()

    one, _ = queries_for_a_cart_of(1)
    many, page = queries_for_a_cart_of(6)

    assert all(f"Book 6-{n}" in page for n in range(6))
    assert many == one, f"{many} queries for 6 items, {one} for 1: a query per item"


def test_the_cart_list_counts_items_in_the_same_queries_however_many_carts(admin_client_):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connections["orders"]) as queries:
            assert admin_client_.get("/admin/orders/cart/").status_code == 200
        return len(queries)

    services.cart_item_add(customer_id=uuid.uuid4(), book_id=product().book_id)
    one = queries_for_the_list()
    for _ in range(5):
        services.cart_item_add(customer_id=uuid.uuid4(), book_id=product().book_id)

    assert queries_for_the_list() == one
    assert admin_client_.get("/admin/orders/cart/", {"o": "3"}).status_code == 200  # sorted by item count
