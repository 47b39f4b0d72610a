"""Quire's own metrics move with real work: a checkout through HTTP, events through the in-process transport.

Read from prometheus-client's registry (and from /metrics) before and after, so each assertion
is about what this test's work added, whatever ran before it in the process.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from tests.config.test_metrics import scrape
from tests.orders.factories import staff_client
from tests.orders.test_checkout_flow import ALL_DATABASES, checkout, create_book, sign_up

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

RESERVE = "catalog.handlers.stock_reserve_on_order_placed"
CONFIRM = "orders.handlers.order_confirm_on_stock_reserved"
REJECT = "orders.handlers.order_reject_on_stock_rejected"


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_checkout_counts_its_events_handlers_and_settle_time(settings):
    # The second order must reach catalog to be rejected there: the shop-wide share of unpaid copies
    # (tests/orders/test_unpaid_holds.py) would refuse it at checkout, the one copy being held unpaid.
    settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK = 0
    staff = staff_client()
    book = create_book(staff, title=f"Dune {uuid.uuid4().hex[:6]}", price="9.99", on_hand=1)
    before = {
        "placed": value("quire_checkouts_total", outcome="placed"),
        "replayed": value("quire_checkouts_total", outcome="replayed"),
        "refused": value("quire_checkouts_total", outcome="refused"),
        "published": value("quire_events_published_total", module="orders", event_type="orders.OrderPlaced"),
        "reserved": value("quire_events_handled_total", module="catalog", handler=RESERVE, outcome="applied"),
        "reserve_time": value("quire_handler_seconds_count", module="catalog", handler=RESERVE),
        "confirmed": value("quire_checkout_settle_seconds_count", outcome="confirmed"),
        "rejected": value("quire_checkout_settle_seconds_count", outcome="rejected"),
    }
    first, second = sign_up("Ada"), sign_up("Bob")

    key = str(uuid.uuid4())
    body = {"lines": [{"book_id": book, "quantity": 1}]}
    placed = first.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    replay = first.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    sold_out = checkout(second, body)  # the one copy is taken: catalog rejects this one
    empty = checkout(second)  # an empty cart: refused at once

    assert (placed.status_code, replay.status_code, sold_out.status_code, empty.status_code) == (201, 201, 201, 400)
    assert first.get(f"/api/orders/{placed.json()['id']}/").json()["state"] == "confirmed"
    assert second.get(f"/api/orders/{sold_out.json()['id']}/").json()["state"] == "rejected"
    assert value("quire_checkouts_total", outcome="placed") - before["placed"] == 2
    assert value("quire_checkouts_total", outcome="replayed") - before["replayed"] == 1
    assert value("quire_checkouts_total", outcome="refused") - before["refused"] == 1
    published = value("quire_events_published_total", module="orders", event_type="orders.OrderPlaced")
    assert published - before["published"] == 2
    reserved = value("quire_events_handled_total", module="catalog", handler=RESERVE, outcome="applied")
    assert reserved - before["reserved"] == 2  # both OrderPlaced applied (one reserved, one rejected)
    assert value("quire_handler_seconds_count", module="catalog", handler=RESERVE) - before["reserve_time"] == 2
    assert value("quire_checkout_settle_seconds_count", outcome="confirmed") - before["confirmed"] == 1
    assert value("quire_checkout_settle_seconds_count", outcome="rejected") - before["rejected"] == 1
    assert value("quire_checkout_settle_seconds_sum", outcome="confirmed") > 0


def test_metrics_page_shows_the_counters_of_the_work_done(client):
    staff = staff_client()
    book = create_book(staff, title=f"Emma {uuid.uuid4().hex[:6]}", price="5.00", on_hand=3)
    customer = sign_up("Cy")
    assert checkout(customer, {"lines": [{"book_id": book, "quantity": 1}]}).status_code == 201

    samples = scrape(client)

    assert samples["quire_checkouts_total"][(("outcome", "placed"),)] >= 1
    handled = samples["quire_events_handled_total"]
    assert handled[(("handler", CONFIRM), ("module", "orders"), ("outcome", "applied"))] >= 1
    assert samples["quire_checkout_settle_seconds_count"][(("outcome", "confirmed"),)] >= 1
    published = samples["quire_events_published_total"]
    assert published[(("event_type", "catalog.BookPublished"), ("module", "catalog"))] >= 1
