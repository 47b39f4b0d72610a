"""GET /metrics: this process's (and its service's) metrics in the Prometheus text format.

Under ``run_service`` every child of a service (gunicorn's workers, the relay, the
consumer) writes its metrics to the service's ``PROMETHEUS_MULTIPROC_DIR``, and this page
adds them up (prometheus-client's multiprocess mode); a process on its own (``make run``)
reports from its own memory. Requests, latency and database queries come from
django-prometheus; Quire's own metrics from ``messaging.metrics`` and the modules.
"""

from __future__ import annotations

import os

import prometheus_client
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, multiprocess

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
    page = prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(state)
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)
