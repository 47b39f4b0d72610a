"""The Kafka transport against a real broker and real PostgreSQL.

Run in the stage that starts both:
    eval "$(scripts/dev/postgres.sh env)"; eval "$(scripts/dev/kafka.sh env)"
    .venv/bin/pytest -m "kafka" tests/messaging
Each test uses its own topic prefix (so its own topics and consumer groups).
"""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections, transaction
from kafka import KafkaProducer
from kafka.errors import KafkaError

from messaging import publish
from messaging.envelope import Envelope
from messaging.kafka.consumer import UNPARSEABLE_HANDLER, ModuleConsumer
from messaging.kafka.outbox import ModuleOutbox
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.status import consumer_lag
from messaging.kafka.topics import consumer_group, dead_letter_topic, ensure_topics, events_topic
from messaging.models import DeadLetter, InboxEntry, OutboxMessage
from messaging.transports import get_transport
from tests.messaging.probes import (
    PROBE_HANDLER_NAME,
    ProbeHappened,
    publish_probe,
    relay_running,
    use_kafka_transport,
)
from tests.support.kafka import from_the_beginning
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["catalog", "orders"], transaction=True),
]

CATALOG_TOPIC_PARTITIONS = 3


@pytest.fixture
def kafka(settings):
    """The Kafka transport with a topic prefix of its own; yields the bootstrap servers."""
    servers = use_kafka_transport(settings)
    ensure_topics(
        [events_topic("catalog"), dead_letter_topic("orders")],
        partitions=CATALOG_TOPIC_PARTITIONS,
        bootstrap_servers=servers,
    )
    yield servers
    get_transport().close()


@pytest.fixture
def relay(kafka):
    relays = []

    def make(**options) -> OutboxRelay:
        relays.append(OutboxRelay(["catalog"], **options))
        return relays[-1]

    yield make
    for made in relays:
        made.close()


def read_topic(servers: list[str], topic: str, expected: int, timeout: float = 20.0) -> list:
    """Every record of ``topic`` once ``expected`` have arrived (fails on fewer or more)."""
    with from_the_beginning(servers, topic) as (consumer, partitions):
        records = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        assert len(records) == expected, f"{topic}: {len(records)} record(s) within {timeout}s, expected {expected}"
        assert sum(consumer.end_offsets(partitions).values()) == expected, f"{topic} has more than {expected} records"
        return records


def envelope_of(record) -> Envelope:
    return Envelope.from_dict(json.loads(record.value))


# --- relay -----------------------------------------------------------------------------


@pytest.mark.usefixtures("relay_client")
def test_the_relay_publishes_in_order_keyed_by_aggregate(kafka, relay):
    for sequence in range(12):
        publish_probe(sequence % 3, note=f"#{sequence}")
    rows = list(OutboxMessage.objects.using("catalog").order_by("id"))
    assert all(row.transaction_id is not None for row in rows), "PostgreSQL records each row's transaction"

    # Batches of 4: full batches are marked published in the background while the next is sent.
    assert relay(batch_size=4).drain() == 12

    records = read_topic(kafka, events_topic("catalog"), 12)
    by_key: dict[bytes, list] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(record)
    assert sorted(by_key) == [b"0", b"1", b"2"]
    for key, keyed in by_key.items():
        assert len({record.partition for record in keyed}) == 1, "one aggregate, one partition"
        expected = [str(row.event_id) for row in rows if row.aggregate_id == key.decode()]
        assert [str(envelope_of(record).event_id) for record in keyed] == expected
    # The value PostgreSQL builds reads back as exactly the stored envelope.
    stored = {row.event_id: row.to_envelope() for row in rows}
    assert all(envelope_of(record) == stored[envelope_of(record).event_id] for record in records)
    assert dict(records[0].headers)["event_type"] == b"catalog.ProbeHappened"
    assert not OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).exists()


def test_a_closed_relay_leaves_no_database_session_behind(kafka):
    """Its background reader and marker close their own connections (else the test database cannot be dropped)."""
    for sequence in range(12):
        publish_probe(sequence, note=f"#{sequence}")
    relay = OutboxRelay(["catalog"], batch_size=4)  # full batches: read ahead and marked on worker threads
    assert relay.drain() == 12
    relay.close()

    def others() -> list:
        with connections["catalog"].cursor() as cursor:
            cursor.execute(
                "SELECT pid, left(query, 60) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchall()

    # A closed session's backend leaves pg_stat_activity a moment after the client hung up.
    wait_until(lambda: others() == [], timeout=10, message="no session left open by the relay")


@pytest.mark.usefixtures("relay_client")
def test_the_relay_neither_skips_nor_overtakes_a_transaction_that_commits_late(kafka, relay):
    inserted, release = threading.Event(), threading.Event()

    def late_transaction():
        try:
            with transaction.atomic(using="catalog"):
                publish(ProbeHappened(probe_id=7, note="inserted first, committed last"))
                inserted.set()
                assert release.wait(20)
        finally:
            connections.close_all()

    late = threading.Thread(target=late_transaction)
    late.start()
    assert inserted.wait(20)
    publish_probe(7, note="inserted second, committed first")
    the_relay = relay()

    held_back = the_relay.drain()
    rows, waiting = ModuleOutbox("catalog").ready_rows(limit=10)

    release.set()
    late.join(20)
    assert held_back == 0, "nothing may be published while an older transaction can still commit"
    assert (rows, waiting) == ([], True)
    assert the_relay.drain() == 2
    records = sorted(read_topic(kafka, events_topic("catalog"), 2), key=lambda r: r.offset)
    assert [envelope_of(r).payload["note"] for r in records] == [
        "inserted first, committed last",
        "inserted second, committed first",
    ]


def test_a_long_transaction_in_another_database_does_not_hold_the_relay_back(kafka, relay):
    started, release = threading.Event(), threading.Event()

    def long_transaction_elsewhere():
        try:
            with transaction.atomic(using="orders"), connections["orders"].cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id()")  # holds a transaction id, like any write
                started.set()
                assert release.wait(20)
        finally:
            connections.close_all()

    elsewhere = threading.Thread(target=long_transaction_elsewhere)
    elsewhere.start()
    try:
        assert started.wait(20)
        publish_probe(3, note="younger than the other database's transaction")

        published = relay().drain()
    finally:
        release.set()
        elsewhere.join(20)

    assert published == 1
    assert envelope_of(read_topic(kafka, events_topic("catalog"), 1)[0]).payload["probe_id"] == 3


@pytest.mark.usefixtures("relay_client")
def test_a_running_relay_is_woken_by_the_commit_not_by_its_poll(kafka, relay):
    the_relay = relay(poll_interval=60.0)

    with relay_running(the_relay):
        wait_until(lambda: the_relay.outboxes[0].held, message="the relay holds the lock")
        started = time.monotonic()
        publish_probe(1)
        wait_until(
            lambda: OutboxMessage.objects.using("catalog").filter(published_at__isnull=False).exists(),
            timeout=10,
            message="the event was published",
        )
        assert time.monotonic() - started < 5, "published long before the 60 s poll: the NOTIFY woke the relay"
    assert len(read_topic(kafka, events_topic("catalog"), 1)) == 1


def test_a_second_relay_waits_until_the_first_lets_go(kafka, relay):
    active, standby = relay(), relay()

    assert active.outboxes[0].acquire() is True
    assert standby.outboxes[0].acquire() is False

    active.close()
    wait_until(lambda: standby.outboxes[0].acquire(), timeout=10, message="the standby takes over")


@pytest.mark.usefixtures("relay_client")
def test_writes_succeed_while_kafka_is_down_and_the_relay_drains_when_it_is_back(kafka, relay):
    unreachable = relay(
        bootstrap_servers=["127.0.0.1:1"],
        producer_overrides={"bootstrap_timeout_ms": 1000, "max_block_ms": 1000},
        ensure_topics=False,
    )
    for probe_id in range(5):
        publish_probe(probe_id)  # nothing of the broker is on the write path

    with pytest.raises(KafkaError):
        unreachable.drain()
    assert OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).count() == 5
    unreachable.close()

    assert relay().drain() == 5
    assert len(read_topic(kafka, events_topic("catalog"), 5)) == 5
    assert not OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).exists()


# --- consumer ---------------------------------------------------------------------------


def test_the_consumer_applies_an_event_once_even_when_it_arrives_twice(kafka, relay, probe_handler):
    publish_probe(5, note="once")
    relay().drain()
    original = read_topic(kafka, events_topic("catalog"), 1)[0]
    with KafkaProducer(bootstrap_servers=kafka) as producer:  # the relay died after send, before marking
        producer.send(original.topic, key=original.key, value=original.value).get(timeout=10)
    consumer = ModuleConsumer("orders")

    stats = consumer.run(max_messages=2, idle_exit=20)

    assert (stats.processed, stats.applied, stats.duplicates) == (2, 1, 1)
    assert [(e.probe_id, e.note) for e in probe_handler.received] == [(5, "once")]
    assert InboxEntry.objects.using("orders").filter(handler=PROBE_HANDLER_NAME).count() == 1
    lags = consumer_lag({consumer_group("orders"): [events_topic("catalog")]}, bootstrap_servers=kafka)
    assert sum(lag.lag for lag in lags) == 0, "both offsets committed"


def test_committed_offsets_let_the_next_consumer_continue_where_the_last_stopped(kafka, relay, probe_handler):
    for probe_id in range(6):
        publish_probe(probe_id)
    relay().drain()

    first = ModuleConsumer("orders").run(max_messages=2, idle_exit=20)
    second = ModuleConsumer("orders").run(max_messages=4, idle_exit=20)

    assert (first.processed, second.processed) == (2, 4)
    assert second.duplicates == 0, "the first consumer committed exactly what it processed"
    assert sorted(e.probe_id for e in probe_handler.received) == [0, 1, 2, 3, 4, 5]


def test_a_handler_that_keeps_failing_is_parked_and_copied_to_the_dlq_and_the_consumer_goes_on(
    kafka, relay, probe_handler, settings
):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3}
    probe_handler.failures = 3
    publish_probe(1, note="poison")
    publish_probe(1, note="healthy")  # same aggregate: same partition, after the poison one
    relay().drain()

    stats = ModuleConsumer("orders").run(max_messages=2, idle_exit=20)

    assert (stats.dead_lettered, stats.applied) == (1, 1)
    assert [e.note for e in probe_handler.received] == ["healthy"]
    dead_letter = DeadLetter.objects.using("orders").get()
    assert (dead_letter.status, dead_letter.attempts, dead_letter.handler) == ("parked", 3, PROBE_HANDLER_NAME)
    copy = json.loads(read_topic(kafka, dead_letter_topic("orders"), 1)[0].value)
    assert copy["envelope"]["event_id"] == str(dead_letter.event_id)
    assert copy["envelope"]["payload"] == {"probe_id": 1, "note": "poison"}
    assert (copy["handler"], copy["dead_letter_id"], copy["attempts"]) == (PROBE_HANDLER_NAME, dead_letter.pk, 3)


def test_an_unreadable_record_is_parked_and_the_consumer_goes_on(kafka, relay, probe_handler):
    with KafkaProducer(bootstrap_servers=kafka) as producer:
        producer.send(events_topic("catalog"), key=b"4", value=b"{not json").get(timeout=10)
    publish_probe(4, note="fine")
    relay().drain()

    stats = ModuleConsumer("orders").run(max_messages=2, idle_exit=20)

    assert (stats.unparseable, stats.applied) == (1, 1)
    assert [e.note for e in probe_handler.received] == ["fine"]
    dead_letter = DeadLetter.objects.using("orders").get()
    assert dead_letter.handler == UNPARSEABLE_HANDLER
    assert dead_letter.envelope["raw"] == "{not json"
    copy = json.loads(read_topic(kafka, dead_letter_topic("orders"), 1)[0].value)
    assert copy["raw"] == "{not json" and copy["source"]["topic"] == events_topic("catalog")


def test_stop_finishes_the_batch_in_hand_and_commits_it(kafka, relay, probe_handler):
    for probe_id in range(3):
        publish_probe(probe_id)
    relay().drain()
    partitions: list[int] = []

    def stop_after_the_first(record, envelope, outcomes) -> None:
        partitions.append(record.partition)
        consumer.stop()

    consumer = ModuleConsumer("orders", on_processed=stop_after_the_first)

    stats = consumer.run(idle_exit=20)

    # The batch in hand is one partition's polled records, applied together: all of it, nothing more.
    assert stats.processed == len(partitions) >= 1 and len(set(partitions)) == 1
    rest = ModuleConsumer("orders").run(max_messages=3 - stats.processed, idle_exit=20)
    assert (rest.processed, rest.duplicates) == (3 - stats.processed, 0)
    assert sorted(e.probe_id for e in probe_handler.received) == [0, 1, 2]


# --- operator commands ----------------------------------------------------------------------


def test_ensure_topics_creates_missing_topics_and_leaves_existing_ones(kafka):
    out = io.StringIO()

    call_command("ensure_topics", "--module", "accounts", stdout=out)
    call_command("ensure_topics", "--module", "accounts", "--partitions", "5", stdout=out)

    lines = out.getvalue().splitlines()
    prefix = django_settings.MESSAGING["TOPIC_PREFIX"]
    assert lines == [
        f"created  {prefix}.accounts.events (3 partitions)",
        f"created  {prefix}.accounts.dlq (3 partitions)",
        f"exists   {prefix}.accounts.events (3 partitions) (asked for 5; left unchanged)",
        f"exists   {prefix}.accounts.dlq (3 partitions) (asked for 5; left unchanged)",
    ]


def test_run_relay_run_consumer_and_messaging_status_commands(kafka, probe_handler):
    for probe_id in range(3):
        publish_probe(probe_id)
    out = io.StringIO()

    call_command("run_relay", "--once", "--module", "catalog", stdout=out)
    call_command("run_consumer", "--module", "orders", "--max-messages", "3", "--idle-exit", "20", stdout=out)
    status = io.StringIO()
    call_command("messaging_status", "--module", "catalog", "--module", "orders", "--json", stdout=status)

    assert "published 3 event(s); stopped cleanly" in out.getvalue()
    assert "orders: 3 processed" in out.getvalue()
    assert sorted(e.probe_id for e in probe_handler.received) == [0, 1, 2]
    report = json.loads(status.getvalue())
    assert [(o["module"], o["unpublished"]) for o in report["outbox"]] == [("catalog", 0), ("orders", 0)]
    catalog_lag = [lag for lag in report["consumer_lag"] if lag["topic"] == events_topic("catalog")]
    assert {lag["group"] for lag in catalog_lag} == {consumer_group("orders")}
    assert sum(lag["end"] for lag in catalog_lag) == 3 and sum(lag["lag"] for lag in catalog_lag) == 0
