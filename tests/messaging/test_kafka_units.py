"""Kafka transport pieces that need no broker: record format, names, the relay's reading of the outbox."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from messaging import publish
from messaging.envelope import Envelope
from messaging.kafka.lease import relay_lock_key
from messaging.kafka.outbox import ModuleOutbox, record_value
from messaging.kafka.topics import consumer_group, dead_letter_topic, events_topic, module_topics
from messaging.models import DeadLetter, OutboxMessage
from messaging.transports import get_transport
from tests.messaging.probes import ProbeHappened, publish_probe


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

    records, waiting = ModuleOutbox("catalog").ready_rows(limit=10)

    assert [record.key for record in records] == [b"1", b"2"]  # in insert order, the published one left out
    unpublished = OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).order_by("id")
    assert [Envelope.from_dict(json.loads(record.value)) for record in records] == [
        row.to_envelope() for row in unpublished
    ]
    assert dict(records[0].headers)["event_type"] == b"catalog.ProbeHappened"
    assert waiting is False
    assert OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).count() == 2


# --- operator commands that need no broker ---------------------------------------------------


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_redrive_dead_letters_applies_parked_events_again(probe_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2}
    probe_handler.failures = 2
    publish_probe(21)  # in-process: fails twice, parked
    dead_letter = DeadLetter.objects.using("orders").get()
    out = io.StringIO()

    call_command("redrive_dead_letters", "--all", "--dry-run", "--module", "orders", stdout=out)
    assert "1 dead letter(s) would be redriven" in out.getvalue()
    assert DeadLetter.objects.using("orders").get().status == DeadLetter.Status.PARKED

    call_command("redrive_dead_letters", str(dead_letter.pk), "--module", "orders", stdout=out)

    assert "1 redriven" in out.getvalue()
    assert [e.probe_id for e in probe_handler.received] == [21]
    assert DeadLetter.objects.using("orders").get().status == DeadLetter.Status.REDRIVEN
    with pytest.raises(CommandError, match="name no parked dead letter"):
        call_command("redrive_dead_letters", str(dead_letter.pk), "--module", "orders", stdout=out, stderr=out)
    with pytest.raises(CommandError, match="add --module"):
        call_command("redrive_dead_letters", str(dead_letter.pk), stdout=out)


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_messaging_status_reports_the_outbox_backlog(settings):
    settings.MESSAGING = {**settings.MESSAGING, "TRANSPORT": "kafka"}
    for probe_id in range(3):
        publish_probe(probe_id)  # nothing relays: the Kafka transport leaves it to run_relay
    out = io.StringIO()

    call_command("messaging_status", "--module", "catalog", "--no-kafka", "--json", stdout=out)

    (catalog,) = json.loads(out.getvalue())["outbox"]
    assert (catalog["module"], catalog["unpublished"]) == ("catalog", 3)
    assert catalog["oldest_age_seconds"] >= 0


def test_the_relay_and_consumer_commands_refuse_the_in_process_transport(settings):
    settings.MESSAGING = {**settings.MESSAGING, "TRANSPORT": "inprocess"}

    for command in ("run_relay", "run_consumer"):
        with pytest.raises(CommandError, match="EVENT_TRANSPORT=kafka"):
            call_command(command, "--module", "catalog")
