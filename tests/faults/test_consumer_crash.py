"""A consumer killed between its database commit and its offset commit.

catalog's consumer runs with the fault drill ``run_consumer --crash-after-applied N``: right after
the N-th OrderPlaced is applied (reservation and inbox row committed) it exits before the offset of
that record is committed. Restarted, it reads the record again; the inbox must skip it, so no order
gets two reservations and the stock holds exactly what the confirmed orders bought.
"""

from __future__ import annotations

import signal
import sys

import pytest

from tests.faults.harness import consumer_totals
from tests.faults.load import OrderStream
from tests.support.kafka import committed_offsets, envelope_fields, read_records

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

CRASH_AFTER = 10
DRILL_EXIT_CODE = 75  # run_consumer's CRASH_DRILL_EXIT_CODE
ORDERS = 40


def test_a_consumer_crash_after_its_commit_is_replayed_and_skipped_by_the_inbox(make_shop):
    shop = make_shop()
    shop.start("catalog-consumer", "--crash-after-applied", str(CRASH_AFTER))
    shop.start_all()
    books = shop.create_books([10_000, 15, 10_000])
    shop.wait_for_products(books)

    stream = OrderStream(shop, books, limit=ORDERS)
    stream.start()
    assert shop.wait_exit("catalog-consumer", timeout=120) == DRILL_EXIT_CODE
    assert f"fault drill: exiting after {CRASH_AFTER} applied event(s)" in shop.log_tail("catalog-consumer")

    # The crash came after the database commit: exactly N orders applied (reservation + inbox row)...
    applied = {
        event_id
        for (event_id,) in shop.sql(
            "catalog", "SELECT event_id::text FROM messaging_inboxentry WHERE event_type = 'orders.OrderPlaced'"
        )
    }
    assert len(applied) == CRASH_AFTER
    assert shop.scalar("catalog", "SELECT count(*) FROM catalog_stockreservation") == CRASH_AFTER
    # ... and before the offset commit: some of them lie at or beyond the offsets the group committed.
    committed = committed_offsets(shop.kafka, f"{shop.prefix}.catalog")
    topic = f"{shop.prefix}.orders.events"
    positions = {
        envelope_fields(record)["event_id"]: (record.partition, record.offset)
        for record in read_records(shop.kafka, topic)
    }
    uncommitted = [
        event_id for event_id in applied if positions[event_id][1] >= committed.get((topic, positions[event_id][0]), 0)
    ]
    assert uncommitted, f"every applied record was committed before the crash: {committed}"

    shop.start("catalog-consumer")
    placed = stream.complete()
    assert len(placed) == ORDERS
    settle_seconds = shop.wait_quiescent()
    ledger = shop.assert_consistent(placed)
    assert ledger.confirmed and ledger.rejected, ledger.summary()

    # The restarted consumer read the uncommitted records again and skipped them.
    assert shop.kill("catalog-consumer", signal.SIGTERM) == 0
    totals = consumer_totals(shop.log_path("catalog-consumer").read_text(), "catalog")
    assert totals["applied"] == ORDERS - CRASH_AFTER, totals
    assert totals["duplicates"] >= len(uncommitted), (totals, uncommitted)
    print(
        f"\nfaults: {ledger.summary()}\nfaults: {len(uncommitted)} applied but uncommitted at the crash; "
        f"restarted catalog consumer {totals}; settled {settle_seconds:.1f}s after the stream",
        file=sys.stderr,
    )
