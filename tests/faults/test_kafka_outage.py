"""Kafka stopped for 30 s while customers keep checking out.

The shop runs on a broker of the test's own (the shared one serves other tests). While it is
down every checkout must still be accepted (201): the order and its OrderPlaced are written to the
orders database only, and the event waits in the outbox. Once the broker is back, the relays and
consumers find it by themselves, and every order settles (confirmed or rejected) with the books
balanced, each aggregate's events in order on the topics. It runs with each of the relay's Kafka
clients (MESSAGING_RELAY_CLIENT).
"""

from __future__ import annotations

import sys
import time

import pytest

from messaging.kafka.producers import RELAY_CLIENTS
from tests.faults.load import OrderStream
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

OUTAGE_SECONDS = 30.0


@pytest.mark.parametrize("relay_client", RELAY_CLIENTS)
def test_orders_are_accepted_while_kafka_is_down_and_all_settle_after_it_returns(
    private_kafka, make_shop, relay_client
):
    shop = make_shop(kafka=private_kafka.bootstrap, relay_client=relay_client)
    shop.start_all()
    books = shop.create_books([10_000, 20, 10_000])
    shop.wait_for_products(books)

    stream = OrderStream(shop, books, pause=0.2)
    stream.start()
    wait_until(lambda: shop.settled() >= 5, timeout=60, message="orders settling before the outage")

    stopping_at = time.monotonic()
    private_kafka.stop()
    down_at = time.monotonic()
    placed_before = stream.count
    published_at_stop = shop.outbox_counts("orders")[1]
    # The outage lasts OUTAGE_SECONDS (a duration, not a condition); meanwhile every checkout must succeed.
    while time.monotonic() - down_at < OUTAGE_SECONDS:
        refused = [p for p in stream.placed if p.status != 201]
        assert not refused, f"checkouts refused while Kafka was down: {refused[:3]}"
        time.sleep(1.0)
    placed_during = stream.count - placed_before
    assert placed_during >= 30, f"only {placed_during} checkouts in {OUTAGE_SECONDS:.0f}s without Kafka"
    assert all(p.status == 201 for p in stream.placed), [p.status for p in stream.placed if p.status != 201]
    # Accepted, and waiting in the outbox: nothing could carry them further.
    total, published = shop.outbox_counts("orders")
    assert published == published_at_stop, "rows were marked published while the broker was down"
    assert total - published >= placed_during, f"{total=} {published=} {placed_during=}"
    slowest = max(p.seconds for p in stream.placed[placed_before:])

    starting_at = time.monotonic()
    private_kafka.start()
    back_at = time.monotonic()
    stream.limit = stream.count + 5  # a few more after the broker is back, then stop
    placed = stream.complete(timeout=60)
    settle_seconds = shop.wait_quiescent()
    recovery = time.monotonic() - back_at
    ledger = shop.assert_consistent(placed)
    assert ledger.confirmed and ledger.rejected, ledger.summary()
    shop.assert_each_keys_order()
    assert f"with {relay_client} (MESSAGING_RELAY_CLIENT)" in shop.log_path("orders-relay").read_text()
    print(
        f"\nfaults: {ledger.summary()}\nfaults: {placed_during} checkouts accepted during the {OUTAGE_SECONDS:.0f}s "
        f"outage (slowest {slowest * 1000:.0f} ms); broker stop {down_at - stopping_at:.1f}s, start "
        f"{back_at - starting_at:.1f}s; everything settled {recovery:.1f}s after the broker answered again "
        f"({settle_seconds:.1f}s after the last checkout)",
        file=sys.stderr,
    )
