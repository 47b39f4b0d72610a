"""Relays killed with SIGKILL in the middle of a stream of orders, then restarted.

A relay marks a row published only after the broker acknowledged it, so a relay killed between
the two sends the row again when it comes back; the consumers' inboxes must make that a no-op.
What counts: every event arrives, none is applied twice, and the books balance.

Two kills while customers keep checking out: one at a random moment (wherever the relays happen
to be), and one pinned in the send-to-mark window: the unpublished rows are row-locked, so the
relay sends them, gets the broker's acknowledgement and then waits to mark them, and is killed
there. That one is sure to put duplicates on the topic.

The drill runs with each of the relay's Kafka clients (MESSAGING_RELAY_CLIENT).
"""

from __future__ import annotations

import signal
import sys
from collections import Counter

import pytest

from messaging.kafka.producers import RELAY_CLIENTS
from tests.faults.harness import consumer_totals
from tests.faults.load import OrderStream
from tests.support.kafka import envelope_fields, read_records
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

RELAYS = ("orders-relay", "catalog-relay")


@pytest.mark.parametrize("relay_client", RELAY_CLIENTS)
def test_relays_killed_mid_stream_lose_nothing_and_apply_nothing_twice(make_shop, relay_client):
    shop = make_shop(relay_client=relay_client)
    shop.start_all()
    books = shop.create_books([10_000, 12, 10_000])  # the middle one runs out: some orders are rejected
    shop.wait_for_products(books)
    stream = OrderStream(shop, books, pause=0.03)
    stream.start()

    def relay_publishes(more: int = 10) -> None:
        published = shop.outbox_counts("orders")[1]
        wait_until(
            lambda: shop.outbox_counts("orders")[1] >= published + more,
            timeout=60,
            message="the orders relay publishing",
        )

    def more_orders_placed(more: int = 10) -> None:
        placed = stream.count
        wait_until(lambda: stream.count >= placed + more, timeout=60, message=f"{more} more orders placed")

    # 1. Both relays killed wherever they are; checkouts go on, their events wait in the outbox.
    relay_publishes()
    for relay in RELAYS:
        assert shop.kill(relay, signal.SIGKILL) == -signal.SIGKILL
    more_orders_placed()
    total, published = shop.outbox_counts("orders")
    assert total - published >= 10, f"nothing waited in the outbox ({total=}, {published=})"
    for relay in RELAYS:
        shop.start(relay)
    relay_publishes()

    # 2. The orders relay killed after the broker took a batch and before it marked it published.
    assert shop.kill("orders-relay", signal.SIGKILL) == -signal.SIGKILL
    more_orders_placed()
    with shop.outbox_marks_held("orders") as hold:
        assert len(hold.event_ids) >= 10
        shop.start("orders-relay")
        waiting = wait_until(hold.waiting, timeout=60, message="the relay sent the held rows and waits to mark them")
        assert shop.kill("orders-relay", signal.SIGKILL) == -signal.SIGKILL
        hold.end_sessions(waiting)
    on_topic = Counter(envelope_fields(r)["event_id"] for r in read_records(shop.kafka, f"{shop.prefix}.orders.events"))
    assert all(on_topic[event_id] for event_id in hold.event_ids), "the held rows were not sent before the kill"
    unmarked = shop.scalar(
        "orders",
        "SELECT count(*) FROM messaging_outboxmessage WHERE event_id::text = ANY(%s) AND published_at IS NULL",
        (hold.event_ids,),
    )
    assert unmarked == len(hold.event_ids), "the killed relay marked rows published"
    shop.start("orders-relay")
    relay_publishes(len(hold.event_ids) + 10)  # what it sent before, once more, then the stream
    placed = stream.finish()

    settle_seconds = shop.wait_quiescent()
    ledger = shop.assert_consistent(placed)
    assert ledger.confirmed and ledger.rejected, ledger.summary()
    shop.assert_each_keys_order()
    assert f"with {relay_client} (MESSAGING_RELAY_CLIENT)" in shop.log_path("orders-relay").read_text()

    # On the wire: every event at least once, the held ones twice.
    resent = {}
    for producer in ("orders", "catalog"):
        records = [envelope_fields(r) for r in read_records(shop.kafka, f"{shop.prefix}.{producer}.events")]
        copies = Counter(record["event_id"] for record in records)
        in_outbox = {row[0] for row in shop.sql(producer, "SELECT event_id::text FROM messaging_outboxmessage")}
        assert set(copies) == in_outbox, f"{producer}: the events on the topic differ from the outbox"
        if producer == "orders":
            assert all(copies[event_id] >= 2 for event_id in hold.event_ids)
        distinct = {record["event_id"]: record["event_type"] for record in records}
        resent[producer] = Counter(record["event_type"] for record in records) - Counter(distinct.values())
    assert resent["orders"]["orders.OrderPlaced"] >= 1, resent

    # ... and catalog's consumer saw the re-sent OrderPlaced and skipped them: applied once per order.
    assert shop.kill("catalog-consumer", signal.SIGTERM) == 0
    totals = consumer_totals(shop.log_path("catalog-consumer").read_text(), "catalog")
    assert totals["applied"] == ledger.orders, totals
    assert totals["duplicates"] >= resent["orders"]["orders.OrderPlaced"], (totals, resent)
    print(
        f"\nfaults: {ledger.summary()}\nfaults: re-sent after the kills {dict(resent['orders'])} / "
        f"{dict(resent['catalog'])}; catalog consumer {totals}; settled {settle_seconds:.1f}s after the stream",
        file=sys.stderr,
    )
