"""Kafka transport: the outbox relay process publishes, consumer processes apply.

In this topology a web process only writes outbox rows; ``run_relay`` carries them to
Kafka and ``run_consumer`` hands them to handlers (see ``messaging.kafka_relay`` and
``messaging.kafka_consumer``). This class covers what the transport protocol still asks
of a process: waking the relay (PostgreSQL does it with a trigger's NOTIFY at commit,
SQLite is polled) and copying dead letters to the module's DLQ topic.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from django.conf import settings
from kafka import KafkaProducer
from kafka.errors import KafkaError

from messaging.envelope import Envelope
from messaging.topics import dead_letter_topic

logger = logging.getLogger(__name__)

#: How long a dead letter's copy may wait for the broker; the database row is the record.
DEAD_LETTER_SEND_TIMEOUT_SECONDS = 10.0


def producer_config(bootstrap_servers: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings of every producer Quire creates: idempotent, acks from all in-sync replicas.

    ``enable_idempotence`` keeps a retried batch from being written twice and keeps one
    partition's records in order across retries (up to 5 requests in flight).
    """
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS,
        "client_id": "quire-producer",
        "acks": "all",
        "enable_idempotence": True,
        # The relay flushes after each batch, so lingering never delays a lone event; within a
        # batch it lets the sender thread ship fewer, fuller requests (measured: ~1.5x the rate).
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "request_timeout_ms": 10_000,
        # An upper bound for one record, retries included: after it a future fails and the
        # relay retries the still-unpublished row itself.
        "delivery_timeout_ms": 30_000,
        # send() blocks at most this long for a topic's metadata (e.g. the broker is down).
        "max_block_ms": 10_000,
        "bootstrap_timeout_ms": 10_000,
        "reconnect_backoff_max_ms": 2_000,
    }
    config.update(overrides)
    return config


def make_producer(bootstrap_servers: list[str] | None = None, **overrides: Any) -> KafkaProducer:
    """A connected producer; raises ``KafkaError`` (e.g. ``NoBrokersAvailable``) if no broker answers."""
    return KafkaProducer(**producer_config(bootstrap_servers, **overrides))


def encode_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def envelope_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """What a consumer or an operator's tool may want before parsing the value."""
    return [
        ("event_type", envelope.event_type.encode()),
        ("event_version", str(envelope.event_version).encode()),
        ("event_id", str(envelope.event_id).encode()),
    ]


class KafkaTransport:
    """The transport of the services topology."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def wake(self, alias: str) -> None:
        """Nothing to do here: the relay process publishes.

        On PostgreSQL the outbox insert's trigger already sent a NOTIFY that reaches the
        relay at commit; on SQLite the relay polls. Either way this process's request is
        not held up by the broker, and a broker outage never fails a write.
        """

    def on_process_start(self) -> None:
        """Nothing left behind to pick up in this process: the relay owns the outbox."""

    def dead_lettered(self, envelope: Envelope, subscription, dead_letter) -> None:
        """Copy a parked event to ``<prefix>.<module>.dlq`` for tools that watch the broker.

        The dead-letter row, committed before this runs, is the record an operator redrives
        from; if the broker cannot take the copy now, that is logged and delivery goes on.
        """
        value = {
            "envelope": envelope.to_dict(),
            "module": subscription.module,
            "handler": subscription.name,
            "dead_letter_id": dead_letter.pk,
            "attempts": dead_letter.attempts,
            "error": dead_letter.error,
        }
        headers = [*envelope_headers(envelope), ("handler", subscription.name.encode())]
        self.send_dead_letter(subscription.module, envelope.aggregate_id.encode(), value, headers)

    def send_dead_letter(
        self, module: str, key: bytes | None, value: dict[str, Any], headers: list[tuple[str, bytes]]
    ) -> bool:
        """Send one record to ``module``'s DLQ topic and wait for the broker; False if it could not."""
        topic = dead_letter_topic(module)
        try:
            future = self._dead_letter_producer().send(topic, key=key, value=encode_json(value), headers=headers)
            future.get(timeout=DEAD_LETTER_SEND_TIMEOUT_SECONDS)
        except (KafkaError, OSError) as error:
            logger.warning("dead letter not copied to %s (the database row keeps it): %r", topic, error)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None

    def _dead_letter_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(client_id="quire-dead-letters")
            return self._producer
