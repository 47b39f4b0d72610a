"""GET /metrics: this process's (and its service's) metrics in the Prometheus text format.

Under ``run_service`` every child of a service (gunicorn's workers, the relay, the
consumer) writes its metrics to the service's ``PROMETHEUS_MULTIPROC_DIR``, and this page
adds them up (prometheus-client's multiprocess mode); a process on its own (``make run``)
reports from its own memory. Requests, latency and database queries come from
django-prometheus; Quire's own metrics from ``messaging.metrics`` and the modules. What is a
state is read at scrape time: outbox and dead letters from the databases, pending orders, and
with Kafka the consumer groups from the broker (cached a few seconds) and the relay's and
consumer's heartbeat ages.
"""

from __future__ import annotations

import os
from datetime import timedelta

import prometheus_client
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily

from config import topology
from messaging.health import OutboxCollector


def metrics_view(request) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    state = CollectorRegistry()
    state.register(OutboxCollector({m: topology.alias_for_module(m) for m in settings.SERVED_MODULES}))
    if "orders" in settings.SERVED_MODULES:
        state.register(PendingOrdersCollector())
    if settings.EVENT_TRANSPORT == "kafka":
        from messaging.kafka.health import KafkaCollector

        state.register(KafkaCollector())
    page = prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(state)
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)


class PendingOrdersCollector:
    """Scrape-time gauges of checkouts whose saga has not settled (orders' database)."""

    def collect(self):
        from orders import selectors  # only in a process that serves orders

        overdue = GaugeMetricFamily(
            "quire_orders_pending_overdue",
            "Orders pending longer than ORDERS_PENDING_TIMEOUT_SECONDS (orders_resolve_pending moves them on).",
        )
        oldest = GaugeMetricFamily(
            "quire_orders_pending_oldest_seconds", "Age of the oldest pending order (0 when none is pending)."
        )
        try:
            summary = selectors.orders_pending_summary(
                older_than=timedelta(seconds=settings.ORDERS_PENDING_TIMEOUT_SECONDS)
            )
        except DatabaseError:
            return  # quire_database_up says why
        overdue.add_metric([], summary.overdue)
        oldest.add_metric([], summary.oldest_seconds)
        yield from (overdue, oldest)
