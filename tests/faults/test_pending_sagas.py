"""Sagas that never settle, in the services topology: found, re-announced over Kafka, or rejected with a reason.

Two ways a checkout stays pending while every process answers HTTP:

- its OrderPlaced is lost on the way (here: marked published by the test while the orders relay is
  stopped, so it never reaches the topic): ``orders_resolve_pending`` announces it again, the relay
  carries the new announcement, catalog reserves and the order is confirmed;
- catalog does not answer (its consumer is down) through every re-announcement: the order is
  rejected (``not_confirmed_in_time``) and catalog asked to release; when the consumer returns it
  reserves from the first announcement, answers the later one again, then releases, and the
  books balance with nothing held for a rejected order.

``/metrics`` of orders' web process counts the overdue orders meanwhile. The one-process
topology is tested in tests/orders/test_pending_sagas.py.
"""

from __future__ import annotations

import re
import signal
import sys

import pytest

from tests.support.processes import PYTHON, run
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

TIMEOUT = 300  # ORDERS_PENDING_TIMEOUT_SECONDS's default, as the web process (and its gauge) has it
OVERDUE = "interval '400 seconds'"


def resolve(shop) -> str:
    """``orders_resolve_pending`` once, as a CronJob runs it: a process of orders' own."""
    argv = [PYTHON, "manage.py", "orders_resolve_pending", "--max-reannouncements", "1"]
    return run(argv, shop.env("orders"), timeout=60).stdout


def overdue_gauge(shop) -> float:
    page = shop.client().get("/metrics").text
    return float(re.search(r"^quire_orders_pending_overdue (\S+)$", page, re.M).group(1))


def make_overdue(shop, order_ids: list[str]) -> None:
    """The orders, and their last re-announcement, happened longer ago than the timeout."""
    shop.sql(
        "orders",
        f"UPDATE orders_order SET created_at = created_at - {OVERDUE}, "
        f"reannounced_at = reannounced_at - {OVERDUE} WHERE id::text = ANY(%s) RETURNING id",
        (order_ids,),
    )


def states(shop, order_ids: list[str]) -> dict[str, tuple]:
    rows = shop.sql(
        "orders",
        "SELECT id::text, state, reannounced_count, rejection_reason FROM orders_order WHERE id::text = ANY(%s)",
        (order_ids,),
    )
    return {order_id: tuple(rest) for order_id, *rest in rows}


def test_lost_announcements_are_made_again_and_unanswered_orders_are_rejected(make_shop):
    shop = make_shop()
    shop.start_all()
    books = shop.create_books([1_000, 1_000])
    shop.wait_for_products(books)
    customer = shop.customers(1)[0]

    def checkout() -> str:
        placed = shop.place_order(
            customer, [{"book_id": books[0], "quantity": 2}, {"book_id": books[1], "quantity": 1}]
        )
        assert placed.status == 201
        return placed.order_id

    # 1. OrderPlaced lost: the relay is stopped, the rows are marked published and never sent.
    assert shop.kill("orders-relay", signal.SIGTERM) == 0
    lost = [checkout() for _ in range(3)]
    lost_events = shop.sql(
        "orders",
        "UPDATE messaging_outboxmessage SET published_at = now() WHERE published_at IS NULL "
        "AND event_type = 'orders.OrderPlaced' RETURNING event_id::text",
    )
    assert len(lost_events) == len(lost)
    shop.start("orders-relay")
    make_overdue(shop, lost)
    wait_until(lambda: overdue_gauge(shop) == 3, timeout=30, message="/metrics counting 3 overdue orders")

    output = resolve(shop)

    assert output.count("reannounced") == 4, output  # one line per order and the summary
    wait_until(
        lambda: {state for state, *_ in states(shop, lost).values()} == {"confirmed"},
        timeout=60,
        message="the re-announced orders confirmed through Kafka",
    )
    assert {count for _, count, _ in states(shop, lost).values()} == {1}
    assert overdue_gauge(shop) == 0

    # 2. catalog does not answer: re-announced once, then rejected with the reason.
    assert shop.kill("catalog-consumer", signal.SIGTERM) == 0
    unanswered = [checkout() for _ in range(2)]
    make_overdue(shop, unanswered)
    assert "2 reannounced" in resolve(shop)
    make_overdue(shop, unanswered)
    assert "2 rejected" in resolve(shop)
    assert states(shop, unanswered) == dict.fromkeys(unanswered, ("rejected", 1, "not_confirmed_in_time"))
    assert overdue_gauge(shop) == 0

    # catalog comes back: reserves from the first announcement, answers the second, then releases.
    shop.start("catalog-consumer")
    settle_seconds = shop.wait_quiescent(lost=frozenset(event_id for (event_id,) in lost_events))
    reservations = dict(
        shop.sql(
            "catalog",
            "SELECT order_id::text, state FROM catalog_stockreservation WHERE order_id::text = ANY(%s)",
            (lost + unanswered,),
        )
    )
    assert reservations == {**dict.fromkeys(lost, "reserved"), **dict.fromkeys(unanswered, "released")}
    held = dict(shop.sql("catalog", "SELECT book_id, reserved FROM catalog_stock"))
    assert held == {books[0]: 2 * len(lost), books[1]: len(lost)}, "stock held for a rejected order"
    for service in ("orders", "catalog"):
        total, published = shop.outbox_counts(service)
        assert total == published
        assert not shop.sql(service, "SELECT id FROM messaging_deadletter")
    announced = dict(
        shop.sql(
            "orders",
            "SELECT aggregate_id, count(*) FROM messaging_outboxmessage WHERE event_type = 'orders.OrderPlaced' "
            "AND aggregate_id = ANY(%s) GROUP BY 1",
            (lost + unanswered,),
        )
    )
    assert announced == dict.fromkeys(lost + unanswered, 2)
    print(
        f"\nfaults: {len(lost)} lost announcements made again and confirmed; {len(unanswered)} unanswered orders "
        f"rejected after 1 re-announcement, their stock released when catalog returned; settled {settle_seconds:.1f}s",
        file=sys.stderr,
    )
