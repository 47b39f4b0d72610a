"""A consumer far behind applies its backlog without leaving its group.

Issue 13: after falling behind, a consumer was evicted from its group (and, rebuilding its
client, kafka-python logged ``AttributeError: 'NoneType' object has no attribute 'recv'``).
Here a backlog of real catalog events (BookPublished, then StockChanged) waits on the topic
before orders' consumer starts, with a session timeout as short as the broker allows: the
consumer must apply all of it in one group generation, losing no partition and rebuilding no
client. Figures (catch-up rate against the steady rate): bench/bench_consumer_catchup.py.

Run in the stage that starts PostgreSQL and Kafka (see tests/messaging/test_kafka_transport.py).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections
from kafka import KafkaProducer

from catalog.contracts import BookPublished, StockChanged
from messaging.envelope import Envelope
from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic
from messaging.transports import get_transport
from orders.models import Product
from tests.messaging.probes import use_kafka_transport

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.django_db(databases=["catalog", "orders"], transaction=True),
]

BOOKS = 2_000  # 4,000 events: 80 polls of max_poll_records


def value(event) -> tuple[bytes, bytes]:
    envelope = Envelope(
        event_type=event.event_type,
        event_version=event.event_version,
        aggregate_id=str(event.book_id),
        producer="catalog",
        payload=event.to_payload(),
        occurred_at=datetime.now(UTC),
    )
    return envelope.aggregate_id.encode(), json.dumps(envelope.to_dict()).encode()


def test_a_large_backlog_is_applied_in_one_group_generation(settings, caplog):
    servers = use_kafka_transport(settings)
    try:
        topic = events_topic("catalog")
        ensure_topics([topic, dead_letter_topic("orders")])
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
        events = [
            BookPublished(
                book_id=book_id,
                title=f"Book {book_id}",
                authors=["An Author"],
                genres=["fiction"],
                price=Decimal("9.99"),
                currency="EUR",
                active=True,
                available=3,
            )
            for book_id in range(1, BOOKS + 1)
        ]
        events += [StockChanged(book_id=book_id, on_hand=9, reserved=2, available=7) for book_id in range(1, BOOKS + 1)]
        for event in events:
            key, record = value(event)
            producer.send(topic, key=key, value=record)
        producer.flush()
        producer.close()

        generations: set[int] = set()
        applied = threading.Event()

        def on_processed(record, envelope, outcomes) -> None:
            generation = getattr(getattr(consumer.consumer, "_coordinator", None), "_generation", None)
            if generation is not None:
                generations.add(generation.generation_id)
            if consumer.stats.processed >= len(events):
                applied.set()

        # The shortest session the broker accepts (group.min.session.timeout.ms): a heartbeat
        # starved for longer than that by the batches being applied evicts the member.
        consumer = ModuleConsumer(
            "orders",
            on_processed=on_processed,
            consumer_overrides={"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000},
        )

        def run() -> None:
            try:
                consumer.run()
            finally:
                connections.close_all()

        caplog.set_level(logging.INFO, logger="messaging.kafka.consumer")
        thread = threading.Thread(target=run, name="test-consumer-catchup", daemon=True)
        thread.start()
        try:
            assert applied.wait(240), f"applied {consumer.stats.processed} of {len(events)}: {vars(consumer.stats)}"
            # Before stop(): leaving the group on close revokes the partitions, as it should.
            # (The first join "revokes" nothing: kafka-python reports an empty revocation.)
            left = [
                r.getMessage()
                for r in caplog.records
                if ("partitions lost" in r.getMessage() or "revoked" in r.getMessage())
                and not r.getMessage().endswith(": []")
            ]
        finally:
            consumer.stop()
            thread.join(30)
        assert not thread.is_alive(), "the consumer did not stop"

        # Each event has one orders handler (the product copy); every one applied, once.
        assert (consumer.stats.applied, consumer.stats.dead_lettered) == (len(events), 0)
        assert Product.objects.filter(book_id__lte=BOOKS, available=7).count() == BOOKS
        assert not left, f"the consumer left its group while catching up: {left}"
        assert consumer.stats.rebuilds == 0
        assert len(generations) == 1, f"group generations seen while applying: {sorted(generations)}"
    finally:
        get_transport().close()
