"""The relay's two Kafka clients against a real broker: the same partitions, the same order, each row once.

Run in the stage that starts PostgreSQL and Kafka (see test_kafka_transport.py). The outage
test stops a broker of its own, so the shared one keeps serving the other tests.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from messaging.kafka.clients import admin_client
from messaging.kafka.producers import RELAY_CLIENTS, ConfluentProducer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import ensure_topics, events_topic
from messaging.models import OutboxMessage
from tests.messaging.probes import publish_probe, relay_running, use_kafka_transport
from tests.support.kafka import PrivateKafka, envelope_fields, read_records
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["catalog"], transaction=True),
]

KEYS = 5


def published() -> int:
    return OutboxMessage.objects.using("catalog").filter(published_at__isnull=False).count()


def outbox_order() -> dict[str, list[str]]:
    """Each aggregate's event ids in the order they were committed."""
    order = defaultdict(list)
    for aggregate_id, event_id in (
        OutboxMessage.objects.using("catalog").order_by("id").values_list("aggregate_id", "event_id")
    ):
        order[aggregate_id].append(str(event_id))
    return dict(order)


def topic_order(records) -> dict[str, list[str]]:
    """Each key's event ids in the order of the topic (one key, one partition: offset order)."""
    order = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        order[record.key.decode()].append(envelope_fields(record)["event_id"])
    return dict(order)


def test_either_client_puts_an_aggregates_events_on_the_same_partition(settings):
    servers = use_kafka_transport(settings)
    topic = events_topic("catalog")
    ensure_topics([topic], partitions=3, bootstrap_servers=servers)
    for probe_id in range(12):
        publish_probe(probe_id)

    for client in RELAY_CLIENTS:
        OutboxMessage.objects.using("catalog").update(published_at=None)
        with OutboxRelay(["catalog"], client=client) as relay:
            assert relay.drain() == 12

    records = read_records(",".join(servers), topic)
    assert len(records) == 12 * len(RELAY_CLIENTS)
    partitions = defaultdict(set)
    for record in records:
        partitions[record.key].add(record.partition)
    assert all(len(found) == 1 for found in partitions.values()), dict(partitions)
    assert len(set().union(*partitions.values())) > 1, "the keys are spread over the partitions"


def test_a_dropped_confluent_producer_fails_what_it_never_delivered_and_creates_no_topic(settings):
    servers = use_kafka_transport(settings)
    missing = f"{events_topic('catalog')}-never-created"
    producer = ConfluentProducer(servers)
    delivery = producer.send(missing, key=b"1", value=b"{}", headers=[("event_id", b"e")])

    producer.close(timeout=0)

    assert delivery.failed(), "purged, and its report served before the producer was destroyed"
    admin = admin_client(servers)
    try:
        assert missing not in admin.list_topics()
    finally:
        admin.close()


@pytest.fixture
def private_kafka(tmp_path_factory):
    """A broker this test may stop; stopped and deleted after."""
    broker = PrivateKafka(tmp_path_factory.mktemp("relay-kafka"))
    with broker.running():
        yield broker


def test_across_a_broker_outage_the_confluent_relay_keeps_each_keys_order_and_publishes_each_row_once(
    private_kafka, settings
):
    # kafka-python's relay has the same drill with a shop around it (tests/faults/test_kafka_outage.py).
    use_kafka_transport(settings)
    settings.KAFKA_BOOTSTRAP_SERVERS = [private_kafka.bootstrap]
    topic = events_topic("catalog")
    ensure_topics([topic], partitions=3, bootstrap_servers=[private_kafka.bootstrap])
    # A short delivery timeout: during the outage the producer's records time out, the round
    # fails, and the producer is dropped and built again once the broker is back.
    relay = OutboxRelay(
        ["catalog"],
        client="confluent",
        batch_size=20,
        producer_overrides={"delivery_timeout_ms": 5000, "request_timeout_ms": 3000},
        stall_exit_seconds=0,
    )
    sequence = iter(range(1_000))

    def publish(count: int) -> None:
        for _ in range(count):
            number = next(sequence)
            publish_probe(number % KEYS, note=f"#{number}")

    try:
        with relay_running(relay):
            publish(40)
            wait_until(lambda: published() == 40, timeout=30, message="40 events published before the outage")

            private_kafka.stop()
            failures_before = relay.stats.failures
            publish(40)  # accepted: nothing of the broker is on the write path
            wait_until(
                lambda: relay.stats.failures >= failures_before + 2,
                timeout=60,
                message="relay rounds failing while the broker is down",
            )
            assert published() == 40, "rows were marked published while the broker was down"

            private_kafka.start()
            wait_until(lambda: published() == 80, timeout=90, message="the outage's events published once it is back")
            publish(20)
            wait_until(lambda: published() == 100, timeout=30, message="the events after the outage published")
    finally:
        relay.close()

    records = read_records(private_kafka.bootstrap, topic)
    copies = Counter(envelope_fields(record)["event_id"] for record in records)
    expected = outbox_order()
    assert set(copies) == {event_id for ids in expected.values() for event_id in ids}
    assert [event_id for event_id, count in copies.items() if count > 1] == [], "a row was published twice"
    assert topic_order(records) == expected, "an aggregate's events left the outbox's order"
