"""orders' own Prometheus metrics: checkouts by outcome, and how long the checkout saga takes to settle.

Counted at commit (``transaction.on_commit``), so a rolled-back checkout or transition never
counts. Multiprocess-safe like every Quire metric (``config/metrics.py``): a checkout is counted
by the gunicorn worker that took it, a settlement by the consumer that applied catalog's answer.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHECKOUTS = Counter(
    "quire_checkouts",
    "Checkout requests by outcome: placed (a new pending order), replayed (an Idempotency-Key retry "
    "answered with the first response), refused (invalid: empty cart, unknown book, ...).",
    ["outcome"],
)
CHECKOUT_SETTLE_SECONDS = Histogram(
    "quire_checkout_settle_seconds",
    "From the order placed (OrderPlaced recorded) to confirmed or rejected (by catalog's answer, or by "
    "orders_resolve_pending when it never came), by outcome.",
    ["outcome"],
    # Up to an hour: a checkout the resolver rejects settles after (reannouncements + 1) x the pending timeout.
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)
PENDING_RESOLVED = Counter(
    "quire_orders_pending_resolved",
    "Overdue pending orders orders_resolve_pending moved on, by action: reannounced (OrderPlaced published again) "
    "or rejected (not_confirmed_in_time).",
    ["action"],
)
