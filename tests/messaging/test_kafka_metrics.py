"""The relay's and the consumer's metrics after real work against Kafka and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY

from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic
from messaging.transports import get_transport
from tests.messaging.probes import PROBE_HANDLER_NAME, publish_probe, use_kafka_transport

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["catalog", "orders"], transaction=True),
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
