"""PostgreSQL crashes (``pg_ctl stop -m immediate``) while customers keep checking out, then starts again.

The shop runs on a PostgreSQL server of the test's own. A 201 promises that the order and its
OrderPlaced exist: the commit was acknowledged only once its WAL was written
(``synchronous_commit = on`` in ``scripts/dev/postgres.sh``), so crash recovery must bring back
every acknowledged order. While the server is down the API answers 503 with ``Retry-After`` and
a problem body (never 500), and the customers retry with the same ``Idempotency-Key``: the
checkout whose transaction died with the server must not block its key (the in-flight marker is
a session advisory lock, gone with the session), and a checkout whose commit reached the disk
although its answer was lost is replayed, not placed twice. Afterwards every order settles and
the books balance.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import pytest

from tests.faults.load import OrderStream
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

#: The idempotency lock timeout a refused key would wait without the advisory lock (orders/idempotency.py).
LOCK_TIMEOUT_SECONDS = 60.0


def test_a_postgresql_crash_mid_stream_loses_no_acknowledged_order(private_postgres, make_shop):
    # The durability the application relies on, and what the dev server gives up (a machine crash only).
    assert private_postgres.setting("synchronous_commit") == "on"
    assert private_postgres.setting("fsync") == "off"
    shop = make_shop(database=private_postgres.url)
    shop.start_all()
    books = shop.create_books([10_000, 15, 10_000])
    shop.wait_for_products(books)
    # Three customers' streams at once, so that the crash catches checkouts at every step of theirs.
    streams = [OrderStream(shop, books, pause=0.01, retry_for=120, seed=seed) for seed in (7, 8, 9)]
    for stream in streams:
        stream.start()
    wait_until(lambda: shop.settled() >= 10, timeout=60, message="orders settling before the crash")

    placed_before = sum(stream.count for stream in streams)
    crash_started = time.monotonic()
    private_postgres.crash()
    crashed_at = time.monotonic()
    # Down until the customers have been refused a few times (a condition, not a duration).
    wait_until(lambda: len(shop.refusals) >= 8, timeout=60, message="checkouts refused while PostgreSQL is down")
    private_postgres.start()
    back_at = time.monotonic()
    shop.reconnect()
    for stream in streams:
        stream.limit = stream.count + 10  # a few more after the restart, then stop
    placed = [p for stream in streams for p in stream.complete(timeout=180)]
    settle_seconds = shop.wait_quiescent()

    # While it was down: 503 with Retry-After and a problem code, never a 500; right after it, a key
    # left in flight by a transaction the crash killed is free at once (no 409 for the lock timeout).
    statuses = Counter((status, code) for status, _, code in shop.refusals)
    assert set(statuses) <= {
        (503, "database_unavailable"),
        (503, "database_busy"),
        (409, "idempotency_key_in_flight"),
    }, statuses
    assert statuses[(503, "database_unavailable")] >= 1, statuses
    assert all(retry_after for _, retry_after, _ in shop.refusals)
    retried = [p for p in placed if p.refused]
    assert retried, "no checkout was refused during the crash"
    waited_after_restart = max(p.answered_at - back_at for p in retried)
    assert waited_after_restart < LOCK_TIMEOUT_SECONDS / 4, f"a refused key waited {waited_after_restart:.1f}s"

    # Every 201 is in the database with its OrderPlaced, nothing twice; everything settled.
    ledger = shop.assert_consistent(placed)
    assert ledger.confirmed and ledger.rejected, ledger.summary()
    print(
        f"\nfaults: {ledger.summary()}\nfaults: {placed_before} checkouts before the crash, {len(placed)} in all; "
        f"crash took {crashed_at - crash_started:.1f}s, down {back_at - crashed_at:.1f}s (restart with recovery "
        f"included); refusals {dict(statuses)}; {len(retried)} checkouts retried with their key, the last answered "
        f"{waited_after_restart:.1f}s after the restart; settled {settle_seconds:.1f}s after the last checkout",
        file=sys.stderr,
    )
