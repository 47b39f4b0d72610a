"""The relay's and the consumer's metrics after real work against Kafka and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from messaging.kafka import health as kafka_health
from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic
from messaging.transports import get_transport
from tests.messaging.probes import PROBE_HANDLER_NAME, publish_probe, use_kafka_transport

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders", "recommendations"], transaction=True),
]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def kafka(settings):
    servers = use_kafka_transport(settings)
    # One partition: the lag after a partial run is exactly the records left.
    ensure_topics([events_topic("catalog"), dead_letter_topic("orders")], partitions=1, bootstrap_servers=servers)
    yield servers
    get_transport().close()


def test_relay_and_consumer_metrics_follow_the_events(kafka, probe_handler):
    before_batches = value("quire_relay_batches_total", module="catalog")
    before_events = value("quire_relay_events_total", module="catalog")
    handled = {"module": "orders", "handler": PROBE_HANDLER_NAME}
    before_applied = value("quire_events_handled_total", **handled, outcome="applied")
    before_timed = value("quire_handler_seconds_count", **handled)
    for probe_id in range(5):
        publish_probe(probe_id)

    with OutboxRelay(["catalog"], batch_size=2) as relay:
        assert relay.drain() == 5
    assert value("quire_relay_batches_total", module="catalog") - before_batches == 3  # 2 + 2 + 1
    assert value("quire_relay_events_total", module="catalog") - before_events == 5

    lag = {"module": "orders", "topic": events_topic("catalog"), "partition": "0"}
    third, go_on, lag_seen = threading.Event(), threading.Event(), []

    def on_processed(record, envelope, outcomes) -> None:
        if record.offset == 2:  # the first batch (offsets 0 and 1) is done and its lag reported
            lag_seen.append(value("quire_consumer_lag", **lag))
            third.set()
            go_on.wait(10)

    # Batches of two records, so that the lag is reported between them.
    consumer = ModuleConsumer("orders", consumer_overrides={"max_poll_records": 2}, on_processed=on_processed)
    thread = threading.Thread(target=consumer.run, kwargs={"max_messages": 5})
    thread.start()
    try:
        assert third.wait(30), "the consumer did not reach the third record"
    finally:
        go_on.set()
        thread.join(30)
    assert lag_seen == [3]
    assert value("quire_consumer_lag", **lag) == 0
    assert value("quire_events_handled_total", **handled, outcome="applied") - before_applied == 5
    assert value("quire_handler_seconds_count", **handled) - before_timed == 5
    assert [event.probe_id for event in probe_handler.received] == [0, 1, 2, 3, 4]


def scrape(settings) -> dict[str, dict[tuple, float]]:
    """This process's /metrics page, as a service with the Kafka transport serves it (the broker view fresh)."""
    settings.EVENT_TRANSPORT = "kafka"
    kafka_health.forget_group_views()
    response = Client().get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_the_group_lag_comes_from_the_broker_also_while_no_member_reads(kafka, probe_handler, settings, tmp_path):
    heartbeat = tmp_path / "consumer.heartbeat"
    heartbeat.touch()
    os.utime(heartbeat, (time.time() - 30, time.time() - 30))
    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_HEARTBEAT_FILE": str(heartbeat)}
    for probe_id in range(4):
        publish_probe(probe_id)
    with OutboxRelay(["catalog"]) as relay:
        assert relay.drain() == 4
    orders = (("module", "orders"),)
    partition = (("module", "orders"), ("partition", "0"), ("topic", events_topic("catalog")))

    # Nobody in orders' group: no consumer reports a lag of its own, the broker's view does.
    samples = scrape(settings)
    assert samples["quire_kafka_up"] == {(): 1}
    assert samples["quire_consumer_group_lag"][partition] == 4
    assert samples["quire_consumer_assigned_partitions"][orders] == 0
    assert samples["quire_consumer_unowned_partitions"][orders] == 1
    assert 30 <= samples["quire_last_progress_seconds"][(("role", "consumer"),)] < 60
    assert (("role", "relay"),) not in samples["quire_last_progress_seconds"]  # no relay runs beside it

    consumer = ModuleConsumer("orders")
    thread = threading.Thread(target=consumer.run, kwargs={"max_messages": 4})
    thread.start()
    thread.join(30)
    assert not thread.is_alive()

    assert scrape(settings)["quire_consumer_group_lag"][partition] == 0  # committed up to the log end


def test_kafka_up_is_0_when_the_broker_does_not_answer(kafka, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    try:
        samples = scrape(settings)
    finally:
        kafka_health.forget_group_views()
    assert samples["quire_kafka_up"] == {(): 0}
    assert "quire_consumer_group_lag" not in samples
