"""Kafka transport pieces that need no broker: record format, names, the relay's reading of the outbox."""

import json

import pytest
from django.db import transaction
from django.utils import timezone

from messaging import publish
from messaging.envelope import Envelope
from messaging.kafka_relay import ModuleOutbox, record_value, relay_lock_key
from messaging.models import OutboxMessage
from messaging.topics import consumer_group, dead_letter_topic, events_topic, module_topics
from messaging.transports import get_transport
from tests.messaging.probes import ProbeHappened


def test_a_record_value_reads_back_as_the_envelope_it_came_from():
    envelope = Envelope(
        event_type="catalog.ProbeHappened",
        event_version=1,
        aggregate_id="7",
        producer="catalog",
        payload={"probe_id": 7, "note": 'naïve "quoted" text'},
        occurred_at=timezone.now(),
        correlation_id="req-1",
    )

    value = record_value(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        event_version=envelope.event_version,
        aggregate_id=envelope.aggregate_id,
        producer=envelope.producer,
        correlation_id=envelope.correlation_id,
        occurred_at=envelope.occurred_at,
        payload_json=json.dumps(envelope.payload),
    )

    assert Envelope.from_dict(json.loads(value)) == envelope
    assert json.loads(value) == envelope.to_dict()


def test_names_follow_the_prefix(settings):
    settings.MESSAGING = {**settings.MESSAGING, "TOPIC_PREFIX": "shop"}

    assert events_topic("catalog") == "shop.catalog.events"
    assert dead_letter_topic("orders") == "shop.orders.dlq"
    assert consumer_group("recommendations") == "shop.recommendations"
    assert module_topics(["catalog"]) == ["shop.catalog.events", "shop.catalog.dlq"]


def test_relay_lock_keys_are_stable_distinct_signed_64_bit_integers():
    keys = {module: relay_lock_key(module) for module in ("accounts", "catalog", "orders", "recommendations")}

    assert len(set(keys.values())) == 4
    assert all(-(2**63) <= key < 2**63 for key in keys.values())
    assert relay_lock_key("catalog") == keys["catalog"]


@pytest.mark.django_db(databases=["catalog"], transaction=True)
def test_the_relay_reads_unpublished_rows_of_its_module_in_id_order(settings):
    settings.MESSAGING = {**settings.MESSAGING, "TRANSPORT": "kafka"}
    assert type(get_transport()).__name__ == "KafkaTransport"
    for probe_id in (3, 1, 2):
        with transaction.atomic(using="catalog"):
            publish(ProbeHappened(probe_id=probe_id, note=f"n{probe_id}"))
    first = OutboxMessage.objects.using("catalog").order_by("id").first()
    OutboxMessage.objects.using("catalog").filter(pk=first.pk).update(published_at=first.occurred_at)

    rows, waiting = ModuleOutbox("catalog").ready_rows(limit=10)

    assert [row[4] for row in rows] == ["1", "2"]  # aggregate ids, in insert order, the published one left out
    assert [json.loads(row[8]) for row in rows] == [{"probe_id": 1, "note": "n1"}, {"probe_id": 2, "note": "n2"}]
    assert waiting is False
    assert OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).count() == 2
