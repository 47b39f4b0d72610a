"""Stock hoarding: an unpaid confirmed order expires at its deadline, and a customer's unpaid copies are capped."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders import holds, services
from orders.models import Order
from tests.orders.factories import (
    VALID_CARD,
    confirmed_order,
    customer_client,
    outbox,
    place_order,
    product,
)
from tests.support.databases import on_each_database, use_database

pytestmark = pytest.mark.django_db(databases=["orders", "default"])


def url(order: Order, action: str = "") -> str:
    return f"/api/orders/{order.id}/" + (f"{action}/" if action else "")


def checkout(client, lines):
    return client.post(
        "/api/orders/",
        {"lines": [{"book_id": book.book_id, "quantity": quantity} for book, quantity in lines]},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )


def expire(**options) -> str:
    out = io.StringIO()
    call_command("orders_expire_unpaid", stdout=out, **options)
    return out.getvalue()


# --- the deadline -----------------------------------------------------------------------------


def test_a_confirmed_order_tells_the_customer_when_payment_is_due(settings):
    settings.ORDERS_PAYMENT_TIMEOUT_SECONDS = 600
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    body = client.get(url(order)).json()
    due = Order.objects.get(pk=order.id).payment_due_at
    assert due == order.confirmed_at + timedelta(seconds=600)
    assert body["payment_due_at"] and body["cancellation"] is None


def test_an_order_unpaid_past_its_deadline_is_cancelled_with_a_reason_and_events():
    client, customer_id = customer_client()
    book = product(price="4.00")
    order = confirmed_order(customer_id, (book, 2))
    on_time = confirmed_order(customer_id, (product(), 1))
    Order.objects.filter(pk=order.id).update(payment_due_at=timezone.now() - timedelta(seconds=1))

    output = expire()

    assert f"order {order.id}: not paid in time, cancelled" in output and "1 unpaid order(s) cancelled" in output
    body = client.get(url(order)).json()
    assert body["state"] == "cancelled" and body["actions"] == [] and body["cancelled_at"]
    assert body["cancellation"] == {
        "reason": "payment_timeout",
        "message": "Not paid in time: the order was cancelled and its copies went back on sale.",
    }
    [cancelled] = outbox("orders.OrderCancelled", aggregate_id=order.id)
    assert cancelled.payload["was_confirmed"] is True  # what makes catalog release the copies
    assert cancelled.payload["lines"] == [{"book_id": book.book_id, "quantity": 2, "unit_price": "4.00"}]
    [expired] = outbox("orders.OrderExpired", aggregate_id=order.id)
    assert expired.payload["reason"] == "payment_timeout" and expired.payload["payment_due_at"]
    assert client.get(url(on_time)).json()["state"] == "confirmed"
    # A second sweep finds nothing: an expired order is expired once.
    assert "0 unpaid order(s) cancelled" in expire()
    assert len(outbox("orders.OrderCancelled", aggregate_id=order.id)) == 1


def test_paying_after_the_sweep_is_refused_and_before_it_is_accepted():
    client, customer_id = customer_client()
    late = confirmed_order(customer_id, (product(), 1))
    just_in_time = confirmed_order(customer_id, (product(), 1))
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk__in=[late.id, just_in_time.id]).update(payment_due_at=past)

    # Before the sweep the copies are still held: a payment is taken, and the sweep leaves the order alone.
    assert client.post(url(just_in_time, "pay"), VALID_CARD, format="json").status_code == 200
    assert holds.order_expire_unpaid(order_id=late.id) is True
    assert holds.order_expire_unpaid(order_id=just_in_time.id) is False

    refused = client.post(url(late, "pay"), VALID_CARD, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "illegal_transition"
    assert Order.objects.get(pk=just_in_time.id).state == "paid"


def test_orders_confirmed_before_deadlines_existed_expire_by_confirmation_time(settings):
    settings.ORDERS_PAYMENT_TIMEOUT_SECONDS = 60
    _, customer_id = customer_client()
    old = confirmed_order(customer_id, (product(), 1))
    Order.objects.filter(pk=old.id).update(payment_due_at=None, confirmed_at=timezone.now() - timedelta(seconds=61))

    assert "overdue: order" in expire(dry_run=True)
    assert Order.objects.get(pk=old.id).state == "confirmed"  # a dry run changes nothing
    expire()
    assert Order.objects.get(pk=old.id).state == "cancelled"


def test_a_pending_order_is_not_the_payment_sweeps_business():
    _, customer_id = customer_client()
    pending = place_order(customer_id, (product(), 1))
    Order.objects.filter(pk=pending.id).update(created_at=timezone.now() - timedelta(days=1))
    expire()
    assert Order.objects.get(pk=pending.id).state == "pending"


def test_a_customer_cancelling_says_so():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))
    body = client.post(url(order, "cancel")).json()
    assert body["cancellation"] == {"reason": "customer", "message": "You cancelled this order."}


def test_the_command_refuses_a_bad_period():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--every must be more than 0"):
        expire(every=0)


# --- the cap ------------------------------------------------------------------------------------


def test_unpaid_copies_of_one_book_are_capped_with_a_problem_that_says_why(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = 3
    settings.ORDERS_MAX_UNPAID_COPIES = 0
    client, customer_id = customer_client()
    dune, emma = product(title="Dune"), product(title="Emma")
    assert checkout(client, [(dune, 2)]).status_code == 201

    refused = checkout(client, [(emma, 1), (dune, 2)])

    assert refused.status_code == 409, refused.json()
    body = refused.json()
    assert body["code"] == "unpaid_hold_limit" and body["status"] == 409
    assert "pay or cancel an open order first" in body["detail"]
    [error] = body["errors"]
    assert error["field"] == "lines[1].quantity" and error["code"] == "unpaid_copies_per_book"
    assert "already hold 2" in error["message"] and "at most 1 more" in error["message"]
    assert body["limits"] == {"per_book": 3, "total": 0, "held": 2, "shop_share": 0.5}
    assert Order.objects.filter(customer_id=customer_id).count() == 1
    # One more copy fits; another customer has a cap of their own.
    assert checkout(client, [(dune, 1)]).status_code == 201
    other, _ = customer_client()
    assert checkout(other, [(dune, 3)]).status_code == 201


def test_unpaid_copies_in_all_are_capped(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = 0
    settings.ORDERS_MAX_UNPAID_COPIES = 5
    client, _ = customer_client()
    assert checkout(client, [(product(), 3), (product(), 1)]).status_code == 201

    refused = checkout(client, [(product(), 2)])

    assert refused.status_code == 409
    [error] = refused.json()["errors"]
    assert error == {
        "field": "lines",
        "message": "At most 5 unpaid copies in all at a time; your open orders already hold 4 and this order "
        "asks for 2.",
        "code": "unpaid_copies_total",
    }


def test_paid_rejected_and_cancelled_orders_free_the_cap(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = 2
    settings.ORDERS_MAX_UNPAID_COPIES = 0
    client, customer_id = customer_client()
    book = product()
    paid = confirmed_order(customer_id, (book, 2))
    assert client.post(url(paid, "pay"), VALID_CARD, format="json").status_code == 200
    cancelled = confirmed_order(customer_id, (book, 2))
    assert client.post(url(cancelled, "cancel")).status_code == 200
    expired = confirmed_order(customer_id, (book, 2))
    holds.order_expire_unpaid(order_id=expired.id, now=timezone.now() + timedelta(days=1))

    assert checkout(client, [(book, 2)]).status_code == 201
    assert checkout(client, [(book, 1)]).status_code == 409


def test_a_cart_checkout_over_the_cap_names_the_cart_line_and_keeps_the_cart(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = 2
    client, _ = customer_client()
    book = product()
    assert (
        client.post("/api/orders/cart/items/", {"book_id": book.book_id, "quantity": 3}, format="json").status_code
        == 201
    )

    refused = client.post("/api/orders/", {}, format="json", HTTP_IDEMPOTENCY_KEY="cart-over-cap")

    assert refused.status_code == 409
    assert [error["field"] for error in refused.json()["errors"]] == ["cart.items[0].quantity"]
    assert client.get("/api/orders/cart/").json()["item_count"] == 3
    # The key was not consumed by the refusal: the same key works once the cart fits.
    client.patch(f"/api/orders/cart/items/{book.book_id}/", {"quantity": 2}, format="json")
    assert client.post("/api/orders/", {}, format="json", HTTP_IDEMPOTENCY_KEY="cart-over-cap").status_code == 201


def test_no_limit_when_set_to_zero(settings):
    settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK = 0
    settings.ORDERS_MAX_UNPAID_COPIES = 0
    settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK = 0
    client, _ = customer_client()
    book = product()
    assert checkout(client, [(book, 99)]).status_code == 201
    assert checkout(client, [(book, 99)]).status_code == 201


# --- the shop-wide share (many accounts of one hoarder) ------------------------------------------------


@pytest.fixture
def half_may_wait(settings):
    """The default share, whatever the environment says: half of a book's copies may wait for payment."""
    settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK = 0.5


@on_each_database
def test_many_accounts_together_cannot_hold_more_than_the_share_of_a_book(database, half_may_wait):
    use_database(database, "orders")
    book, other = product(available=10), product(available=10)
    farm = [customer_client()[0] for _ in range(4)]
    # Each account stays far under its own cap (10 of a book); together they reach half the copies.
    assert checkout(farm[0], [(book, 3)]).status_code == 201
    assert checkout(farm[1], [(book, 2)]).status_code == 201

    refused = checkout(farm[2], [(other, 1), (book, 1)])

    assert refused.status_code == 409, refused.json()
    body = refused.json()
    assert body["code"] == "unpaid_hold_limit" and body["limits"]["shop_share"] == 0.5
    [error] = body["errors"]
    assert error["field"] == "lines[1].quantity" and error["code"] == "unpaid_copies_shop"
    assert "50% of its copies" in error["message"]
    # A paying customer's order is not held back by them, and another book is not concerned.
    assert checkout(farm[3], [(other, 4)]).status_code == 201


@on_each_database
def test_copies_reserved_for_unpaid_orders_count_as_the_books_copies(database, half_may_wait):
    use_database(database, "orders")
    book = product(available=4)
    first, first_id = customer_client()
    order = confirmed_order(first_id, (book, 2))  # catalog reserved 2: orders' copy now says 2 available
    services.product_stock_apply(book_id=book.book_id, available=2, as_of=timezone.now())

    # 2 held of 4 copies (2 on the shelf, 2 reserved): half of them wait for payment.
    second, _ = customer_client()
    assert checkout(second, [(book, 1)]).json()["errors"][0]["code"] == "unpaid_copies_shop"
    assert first.post(url(order, "pay"), VALID_CARD, format="json").status_code == 200  # paid: no longer waiting
    assert checkout(second, [(book, 1)]).status_code == 201


@on_each_database
def test_a_first_order_is_never_refused_by_the_share_catalog_decides(database, half_may_wait):
    use_database(database, "orders")
    scarce, gone = product(available=1), product(available=0)
    client, _ = customer_client()
    assert checkout(client, [(scarce, 1)]).status_code == 201  # one copy may always wait
    assert checkout(customer_client()[0], [(gone, 2)]).status_code == 201  # refused by the reservation, not here
    assert checkout(customer_client()[0], [(scarce, 1)]).status_code == 409


def test_a_share_outside_0_to_1_stops_the_start(tmp_path):
    from tests.config.test_configuration_errors import start_django

    result = start_django(tmp_path, ORDERS_MAX_UNPAID_SHARE_PER_BOOK="50")
    assert result.returncode != 0
    assert "ORDERS_MAX_UNPAID_SHARE_PER_BOOK=50.0 is not a share: set a number from 0 (no limit) to 1" in result.stderr
