"""Stock hoarding, from the outside: an unpaid order's copies go back on sale at its deadline, and a
customer's unpaid copies are capped. Against one process (SQLite, events in-process) and the services
(PostgreSQL, Kafka), with the sweep run as an operator runs it (``manage.py orders_expire_unpaid``).
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Shop
from tests.e2e.test_shop import GOOD_CARD, add_book, checkout, order_in_state, register, stock_is, wait_sellable
from tests.support.http import expect

pytestmark = pytest.mark.e2e


def test_an_unpaid_order_expires_and_its_copies_go_back_on_sale(shop: Shop):
    book = add_book(shop, title="Hoarded Atlas", on_hand=4)
    hoarder = register(shop, "Hoarder")
    wait_sellable(shop, hoarder, book["id"])
    order = expect(checkout(hoarder, {"lines": [{"book_id": book["id"], "quantity": 3}]}), 201)
    confirmed = order_in_state(shop, hoarder, order["id"], "confirmed")
    assert confirmed["payment_due_at"], confirmed
    shop.wait_until(stock_is(shop, book["id"], on_hand=4, reserved=3, available=1), message="3 copies held")

    # Time passes: the deadline is moved into the past in orders' own database, as the clock would.
    shop.manage(
        "orders",
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; from orders.models import Order; "
        f"Order.objects.filter(pk='{order['id']}').update(payment_due_at=timezone.now() - timedelta(seconds=1))",
    )
    # The operator's sweep; the service's own periodic one (run_service's expiry child) may have been
    # quicker, either way the order is cancelled once the command has run.
    shop.manage("orders", "orders_expire_unpaid")

    expired = expect(hoarder.get(f"/api/orders/{order['id']}/"), 200)
    assert expired["state"] == "cancelled" and expired["cancellation"]["reason"] == "payment_timeout", expired
    assert expired["actions"] == []
    shop.wait_until(stock_is(shop, book["id"], on_hand=4, reserved=0, available=4), message="the copies released")
    late = hoarder.post(f"/api/orders/{order['id']}/pay/", GOOD_CARD)
    assert late.status == 409, late


def test_a_customer_cannot_hold_more_unpaid_copies_than_the_cap(shop: Shop):
    # The shop runs with the default caps: 10 unpaid copies of one book, 50 in all.
    book = add_book(shop, title="Coveted Almanac", on_hand=30)
    hoarder = register(shop, "Greedy")
    wait_sellable(shop, hoarder, book["id"])
    first = expect(checkout(hoarder, {"lines": [{"book_id": book["id"], "quantity": 8}]}), 201)

    refused = checkout(hoarder, {"lines": [{"book_id": book["id"], "quantity": 3}]})

    assert refused.status == 409 and refused.headers["Content-Type"].startswith("application/problem+json")
    body = refused.json()
    assert body["code"] == "unpaid_hold_limit", body
    assert [error["field"] for error in body["errors"]] == ["lines[0].quantity"], body
    # Cancelling the open order frees the cap.
    order_in_state(shop, hoarder, first["id"], "confirmed")
    expect(hoarder.post(f"/api/orders/{first['id']}/cancel/"), 200)
    expect(checkout(hoarder, {"lines": [{"book_id": book["id"], "quantity": 10}]}), 201)
