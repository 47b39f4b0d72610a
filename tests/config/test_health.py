"""/health/live/ and /health/ready/ on the one-process shop (the services' are in tests/e2e)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from config import topology
from messaging.models import OutboxMessage

ALL_DATABASES = ["default", *topology.MODULES]


def test_live_answers_without_consulting_anything(client):
    # No django_db mark: any database access here would fail the test.
    response = client.get("/health/live/")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_names_every_check_of_this_process(client):
    response = client.get("/health/ready/")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    expected = (
        {"database:default"} | {f"database:{m}" for m in topology.MODULES} | {f"outbox:{m}" for m in topology.MODULES}
    )
    assert set(body["checks"]) == expected
    assert all(check["status"] == "ok" for check in body["checks"].values())


def _unpublished_row(alias: str, *, age: timedelta) -> None:
    OutboxMessage.objects.using(alias).create(
        event_id=uuid.uuid4(),
        event_type="catalog.ProbeHappened",
        event_version=1,
        aggregate_id="1",
        producer="catalog",
        payload={"probe_id": 1},
        occurred_at=timezone.now() - age,
    )


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_fails_with_503_when_an_outbox_is_not_drained(client):
    _unpublished_row("catalog", age=timedelta(seconds=120))

    with override_settings(HEALTH_OUTBOX_MAX_AGE_SECONDS=60):
        response = client.get("/health/ready/")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["outbox:catalog"]["status"] == "failing"
    assert "waits 120s (limit 60s)" in body["checks"]["outbox:catalog"]["error"]
    assert body["checks"]["outbox:orders"]["status"] == "ok"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_young_unpublished_event_keeps_the_process_ready(client):
    _unpublished_row("catalog", age=timedelta(seconds=5))

    with override_settings(HEALTH_OUTBOX_MAX_AGE_SECONDS=60):
        response = client.get("/health/ready/")

    assert response.status_code == 200, response.json()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_reports_an_unreachable_broker_when_events_go_through_kafka(client):
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    with override_settings(EVENT_TRANSPORT="kafka", KAFKA_BOOTSTRAP_SERVERS=["127.0.0.1:1"]):
        response = client.get("/health/ready/")

    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["kafka"]["status"] == "failing"
    assert "127.0.0.1:1" in body["checks"]["kafka"]["error"]


@pytest.mark.kafka
@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_passes_with_a_real_broker(client, settings):
    assert settings.KAFKA_BOOTSTRAP_SERVERS, "make test sets KAFKA_BOOTSTRAP_SERVERS for this stage"
    with override_settings(EVENT_TRANSPORT="kafka"):
        response = client.get("/health/ready/")

    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["kafka"] == {"status": "ok", "seconds": body["checks"]["kafka"]["seconds"]}
