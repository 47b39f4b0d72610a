"""Quire's own Prometheus metrics of the event kernel (the transports add theirs).

Counters and histograms are updated where things happen (publish, delivery, relay,
consumer) and work in prometheus-client's multiprocess mode, so gunicorn's workers, the
relay and the consumer of one service add up on one ``/metrics`` page. What is a state
rather than an event (the outbox backlog, the dead letters waiting) is read from the
database when the page is scraped (``messaging.health.OutboxCollector``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("quire_events_published", "Events committed to a module's outbox.", ["module", "event_type"])
EVENTS_HANDLED = Counter(
    "quire_events_handled",
    "Events handed to a handler, by outcome: applied, duplicate (skipped by the inbox), dead_lettered.",
    ["module", "handler", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "quire_handler_seconds",
    "Time one handler took to apply one event, its inbox row and commit included (failed attempts not).",
    ["module", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELAY_BATCHES = Counter("quire_relay_batches", "Outbox batches a relay handed to its transport.", ["module"])
RELAY_EVENTS = Counter(
    "quire_relay_events", "Outbox rows a relay published (the broker acknowledged them).", ["module"]
)
CONSUMER_LAG = Gauge(
    "quire_consumer_lag",
    "Records on a partition not yet processed by this module's consumer (log end minus its position).",
    ["module", "topic", "partition"],
    # The member that holds the partition reports it; a revoked partition is set to 0 by its former
    # owner and a dead process's value is dropped, so the highest live value is the lag.
    multiprocess_mode="livemax",
)
CONSUMER_REBUILDS = Counter(
    "quire_consumer_rebuilds",
    "Kafka consumer clients a module's consumer threw away and made again, because it idled holding nothing "
    "while its group left partitions without a member (messaging/kafka/liveness.py).",
    ["module"],
)
