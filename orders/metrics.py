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
    "From the order placed (OrderPlaced recorded) to confirmed or rejected by catalog's answer, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
