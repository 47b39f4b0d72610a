"""/health/live/ and /health/ready/ on the one-process shop (the services' are in tests/e2e)."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from config import topology
from messaging.kafka import health as kafka_health
from messaging.models import OutboxMessage
from tests.support.waiting import wait_until

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


@pytest.fixture
def fresh_broker_view():
    """No broker view or failure cached by an earlier test (they are kept per process)."""
    kafka_health.forget_group_views()
    yield
    kafka_health.forget_group_views()


def _heartbeat(path, *, age: float) -> str:
    path.touch()
    os.utime(path, (time.time() - age, time.time() - age))
    return str(path)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_fails_when_the_consumer_beside_it_stopped_progressing(client, settings, tmp_path, fresh_broker_view):
    # What run_service tells its web server: the relay's and the consumer's heartbeat files.
    settings.EVENT_TRANSPORT = "kafka"
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]  # no broker: those checks fail too, and fast
    settings.MESSAGING = {
        **settings.MESSAGING,
        "RELAY_HEARTBEAT_FILE": _heartbeat(tmp_path / "relay", age=2),
        "CONSUMER_HEARTBEAT_FILE": _heartbeat(tmp_path / "consumer", age=200),
        "CONSUMER_STALL_EXIT_SECONDS": 120,
    }

    response = client.get("/health/ready/")

    body = response.json()
    assert response.status_code == 503
    relay, consumer = body["checks"]["relay"], body["checks"]["consumer"]
    assert relay["status"] == "ok" and 2 <= relay["age_seconds"] < 10 and relay["limit_seconds"] == 120
    assert consumer["status"] == "failing" and consumer["age_seconds"] >= 200
    stuck = r"last progress 2\d\ds ago \(limit 120s, MESSAGING_CONSUMER_STALL_EXIT_SECONDS\)"
    assert re.search(stuck, consumer["error"]), consumer
    # A consumer runs here, so its groups are checked; without a broker they cannot be seen.
    groups = {name for name in body["checks"] if name.startswith("consumer-group:")}
    assert groups == {
        "consumer-group:quire.catalog",
        "consumer-group:quire.orders",
        "consumer-group:quire.recommendations",
    }
    assert all("127.0.0.1:1 did not describe the group" in body["checks"][name]["error"] for name in groups)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_leaves_out_the_roles_its_service_does_not_run(client, settings, tmp_path, fresh_broker_view):
    # A web-only process (run_service --no-relay --no-consumer): no heartbeat, no group to answer for.
    settings.EVENT_TRANSPORT = "kafka"
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.MESSAGING = {**settings.MESSAGING, "RELAY_HEARTBEAT_FILE": "", "CONSUMER_HEARTBEAT_FILE": ""}

    checks = client.get("/health/ready/").json()["checks"]

    assert not {"relay", "consumer"} & set(checks)
    assert not [name for name in checks if name.startswith("consumer-group:")]


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_ready_reports_a_relay_that_never_wrote_its_heartbeat(client, settings, tmp_path, fresh_broker_view):
    settings.EVENT_TRANSPORT = "kafka"
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.MESSAGING = {**settings.MESSAGING, "RELAY_HEARTBEAT_FILE": str(tmp_path / "none")}

    relay = client.get("/health/ready/").json()["checks"]["relay"]

    assert relay["status"] == "failing"
    assert f"no heartbeat at {tmp_path / 'none'}: the relay has not started" in relay["error"]


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_ready_sees_partitions_no_member_of_a_group_holds(client, settings, tmp_path, fresh_broker_view):
    from messaging.kafka.consumer import ModuleConsumer
    from messaging.kafka.topics import ensure_topics, module_topics
    from messaging.transports import get_transport
    from tests.messaging.probes import use_kafka_transport

    heartbeat = _heartbeat(tmp_path / "consumer", age=0)
    servers = use_kafka_transport(settings, CONSUMER_HEARTBEAT_FILE=heartbeat)
    settings.EVENT_TRANSPORT = "kafka"
    prefix = settings.MESSAGING["TOPIC_PREFIX"]
    ensure_topics(module_topics(topology.MODULES), bootstrap_servers=servers)

    def group_check(module: str) -> dict:
        kafka_health.forget_group_views()  # the probe's cache would hold the answer a few seconds
        return client.get("/health/ready/").json()["checks"][f"consumer-group:{prefix}.{module}"]

    try:
        # Topics with partitions and no consumer at all: every partition is unread. (A new cluster may
        # need a moment before it describes groups: its offsets topic is made on first use.)
        nobody = wait_until(lambda: "members" in (check := group_check("orders")) and check, timeout=30)
        assert nobody["status"] == "failing" and nobody["members"] == 0, nobody
        assert "have no member" in nobody["error"] and nobody["unowned_partitions"] > 0

        consumer = ModuleConsumer("orders")
        thread = threading.Thread(target=lambda: (consumer.run(), connections.close_all()), daemon=True)
        thread.start()
        try:
            wait_until(
                lambda: group_check("orders")["status"] == "ok",
                timeout=60,
                message="orders' group holding every partition",
            )
            held = group_check("orders")
            assert (held["members"], held["unowned_partitions"], held["state"]) == (1, 0, "Stable"), held
            # The other groups this process serves still have nobody reading.
            assert group_check("catalog")["status"] == "failing"
        finally:
            consumer.stop()
            thread.join(timeout=30)
        # Gone from the group (it left on stop): its partitions are unowned again.
        wait_until(lambda: group_check("orders")["status"] == "failing", timeout=30, message="orders' group empty")
    finally:
        get_transport().close()
