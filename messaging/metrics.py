"""Quire's own Prometheus metrics of the event kernel (the transports add theirs).

Counters and histograms are updated where things happen (publish, delivery, relay,
consumer) and work in prometheus-client's multiprocess mode, so gunicorn's workers, the
relay and the consumer of one service add up on one ``/metrics`` page. What is a state
rather than an event (the outbox backlog, the dead letters waiting) is read from the
database when the page is scraped, by :class:`OutboxCollector`.
"""

from __future__ import annotations

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

EVENTS_PUBLISHED = Counter(
    "quire_events_published", "Events recorded in a module's outbox (committed or not).", ["module", "event_type"]
)
EVENTS_HANDLED = Counter(
    "quire_events_handled",
    "Events handed to a handler, by outcome: applied, duplicate (skipped by the inbox), dead_lettered.",
    ["module", "handler", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "quire_handler_seconds",
    "Time one handler took for one event, its inbox row and commit included (retries not).",
    ["module", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELAY_BATCHES = Counter("quire_relay_batches", "Outbox batches a relay handed to its transport.", ["module"])
RELAY_EVENTS = Counter("quire_relay_events", "Outbox rows a relay handed to its transport.", ["module"])


class OutboxCollector:
    """Scrape-time gauges of each served module's outbox and dead letters, read from its database."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases  # module -> database alias

    def collect(self):
        from messaging.models import DeadLetter, OutboxMessage

        backlog = GaugeMetricFamily("quire_outbox_unpublished", "Outbox rows not yet published.", labels=["module"])
        oldest = GaugeMetricFamily(
            "quire_outbox_oldest_unpublished_seconds",
            "Age of the oldest unpublished outbox row (0 when none waits).",
            labels=["module"],
        )
        parked = GaugeMetricFamily(
            "quire_dead_letters_parked", "Dead letters waiting for an operator.", labels=["module"]
        )
        up = GaugeMetricFamily(
            "quire_database_up", "1 if the module's database answered this scrape.", labels=["module"]
        )
        now = timezone.now()
        for module, alias in self.aliases.items():
            try:
                waiting = (
                    OutboxMessage.objects.using(alias)
                    .filter(published_at__isnull=True)
                    .aggregate(count=Count("id"), oldest=Min("occurred_at"))
                )
                dead = DeadLetter.objects.using(alias).filter(status=DeadLetter.Status.PARKED).count()
            except DatabaseError:
                up.add_metric([module], 0)
                continue
            up.add_metric([module], 1)
            backlog.add_metric([module], waiting["count"])
            age = (now - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0
            oldest.add_metric([module], max(age, 0.0))
            parked.add_metric([module], dead)
        yield from (backlog, oldest, parked, up)
