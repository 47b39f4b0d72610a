"""GET /metrics: Prometheus text with django-prometheus's request metrics and Quire's own."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import topology
from messaging.models import DeadLetter, OutboxMessage

ALL_DATABASES = ["default", *topology.MODULES]


def scrape(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_metrics_report_requests_by_view_and_status(client):
    client.get("/api/catalog/books/")

    samples = scrape(client)

    by_view = samples["django_http_responses_total_by_status_view_method_total"]
    assert any(dict(labels).get("status") == "200" and "book" in dict(labels).get("view", "") for labels in by_view)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_metrics_report_each_modules_outbox_backlog_and_dead_letters(client):
    OutboxMessage.objects.using("orders").create(
        event_id=uuid.uuid4(),
        event_type="orders.OrderPlaced",
        event_version=1,
        aggregate_id="o-1",
        producer="orders",
        payload={},
        occurred_at=timezone.now() - timedelta(seconds=90),
    )
    DeadLetter.objects.using("catalog").create(
        event_id=uuid.uuid4(), handler="catalog.handlers.probe", event_type="orders.OrderPlaced", envelope={}, error="x"
    )

    samples = scrape(client)

    assert samples["quire_outbox_unpublished"][(("module", "orders"),)] == 1
    assert samples["quire_outbox_unpublished"][(("module", "catalog"),)] == 0
    assert samples["quire_outbox_oldest_unpublished_seconds"][(("module", "orders"),)] >= 90
    assert samples["quire_dead_letters_parked"][(("module", "catalog"),)] == 1
    assert samples["quire_database_up"] == {(("module", module),): 1 for module in topology.MODULES}
