"""A consumer must not sit in its group holding nothing while its topics have partitions nobody reads.

kafka-python 3.0.x drops the assignment of a rejoin that its leader started because the
partitions of a subscribed topic changed (its first join saw none yet; partitions were
added): the assignment snapshot is taken when the JoinGroup response arrives, so a poll
whose timer expires while the SyncGroup is in flight finds "no rejoin needed" and never
collects the result. The member stays REBALANCING with no partitions, its heartbeat off,
until the broker evicts it, and never joins again.

The window is a few milliseconds wide; a zero poll timeout makes it near certain here,
as load made it now and then in ``make test`` and ``make services``.

Run in the stage that starts PostgreSQL and Kafka (see tests/messaging/test_kafka_transport.py).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from messaging.kafka.clients import admin_client
from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic
from messaging.transports import get_transport
from tests.messaging.probes import publish_probe, use_kafka_transport

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["catalog", "orders"], transaction=True),
]


@pytest.fixture
def kafka(settings):
    """The Kafka transport with a topic prefix of its own and no topics yet; yields the bootstrap servers."""
    yield use_kafka_transport(settings, CONSUMER_IDLE_CHECK_SECONDS=1.0)
    get_transport().close()


@pytest.fixture
def running():
    """Runs ModuleConsumers in threads the way run_consumer does; stops and joins them afterwards."""
    started: list[tuple[ModuleConsumer, threading.Thread]] = []

    def start(consumer: ModuleConsumer, **options) -> ModuleConsumer:
        def run() -> None:
            try:
                consumer.run(**options)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name=f"test-consumer-{consumer.module}", daemon=True)
        thread.start()
        started.append((consumer, thread))
        return consumer

    yield start
    for consumer, _ in started:
        consumer.stop()
    for consumer, thread in started:
        thread.join(timeout=30)
        assert not thread.is_alive(), f"the {consumer.module} consumer did not stop"


def wait_until(condition, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{message() if callable(message) else message} within {timeout}s"
        time.sleep(0.05)


def held(consumer: ModuleConsumer) -> str:
    client = consumer.consumer
    partitions = sorted(client.assignment()) if client is not None else None
    return f"the consumer holds {partitions} ({vars(consumer.stats)})"


def publish_probes(count: int) -> None:
    for probe_id in range(count):
        publish_probe(probe_id, note=f"#{probe_id}")
    assert OutboxRelay(["catalog"]).drain() == count


def test_a_consumer_started_before_its_topics_have_partitions_consumes_them_once_they_exist(
    kafka, running, probe_handler
):
    consumer = ModuleConsumer("orders", ensure_topics=False)  # as if ensure_topics had not landed yet
    running(consumer, poll_timeout=0)
    wait_until(lambda: consumer.consumer is not None, 20, "the consumer did not create its client")

    ensure_topics([*consumer.topics, dead_letter_topic("orders")], bootstrap_servers=kafka)
    publish_probes(6)

    wait_until(lambda: len(probe_handler.received) == 6, 30, lambda: f"6 events not applied: {held(consumer)}")
    assert sorted(event.probe_id for event in probe_handler.received) == list(range(6))


def test_a_member_left_without_partitions_by_a_rejoin_gets_them_back_by_itself(kafka, running, probe_handler):
    ensure_topics([events_topic("catalog"), dead_letter_topic("orders")], partitions=1, bootstrap_servers=kafka)
    consumer = ModuleConsumer(
        "orders",
        # Short session and metadata age: the new partitions are seen, and the dropped member
        # evicted, within a few seconds instead of half a minute.
        consumer_overrides={"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000, "metadata_max_age_ms": 1_000},
    )
    running(consumer, poll_timeout=0)
    wait_until(lambda: consumer.consumer is not None and consumer.consumer.assignment(), 30, lambda: held(consumer))

    # More partitions: the leader's metadata changes, and kafka-python rejoins the group.
    admin = admin_client(kafka)
    try:
        admin.create_partitions({events_topic("catalog"): 3})
    finally:
        admin.close()
    publish_probes(9)

    wait_until(lambda: len(probe_handler.received) == 9, 60, lambda: f"9 events not applied: {held(consumer)}")
    assert sorted(event.probe_id for event in probe_handler.received) == list(range(9))

    def catalog_partitions() -> int:  # orders reads accounts' topic too; the partitions in question are catalog's
        return sum(1 for tp in consumer.consumer.assignment() if tp.topic == events_topic("catalog"))

    wait_until(lambda: catalog_partitions() == 3, 10, lambda: held(consumer))
