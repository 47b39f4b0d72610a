"""Dead letters on the broker: a parked event's copy on ``<prefix>.<module>.dlq``, and records that are no event.

The dead-letter row (``messaging.delivery.dead_letter_park``, the one place a row is written) is
the record an operator redrives from; the copy on the topic is for tools that watch the broker.
If the broker cannot take a copy now, that is logged and delivery goes on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from messaging.delivery import dead_letter_park
from messaging.envelope import Envelope
from messaging.kafka.clients import encode_json, make_producer
from messaging.kafka.topics import dead_letter_topic
from messaging.models import DeadLetter
from messaging.registry import Subscription

logger = logging.getLogger(__name__)

#: How long a dead letter's copy may wait for the broker; the database row is the record.
DEAD_LETTER_SEND_TIMEOUT_SECONDS = 10.0

#: The dead-letter ``handler`` of a record that could not even be read as an envelope. Stored in
#: dead-letter rows, so it keeps the name it had when the consumer lived in ``messaging.kafka_consumer``.
UNPARSEABLE_HANDLER = "messaging.kafka_consumer.unparseable"


def envelope_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """What a consumer or an operator's tool may want before parsing the value."""
    return [
        ("event_type", envelope.event_type.encode()),
        ("event_version", str(envelope.event_version).encode()),
        ("event_id", str(envelope.event_id).encode()),
    ]


class DeadLetterQueue:
    """Writes dead letters to the DLQ topics, through one producer made on first use (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def copy(self, envelope: Envelope, subscription: Subscription, dead_letter: DeadLetter) -> None:
        """Copy a parked event to its module's DLQ topic: the ``on_park`` hook of delivery."""
        value = {
            "envelope": envelope.to_dict(),
            "module": subscription.module,
            "handler": subscription.name,
            "dead_letter_id": dead_letter.pk,
            "attempts": dead_letter.attempts,
            "error": dead_letter.error,
        }
        headers = [*envelope_headers(envelope), ("handler", subscription.name.encode())]
        self.send(subscription.module, envelope.aggregate_id.encode(), value, headers)

    def park_unparseable(self, module: str, alias: str, record, error: Exception) -> DeadLetter:
        """Park a record that is not an event envelope (a row that names no handler, and its copy)."""
        source = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        raw = record.value.decode("utf-8", errors="replace") if isinstance(record.value, bytes) else repr(record.value)
        headers = dict(record.headers or [])
        event_type = headers.get("event_type", b"").decode("utf-8", errors="replace") or "unparseable"
        # Derived from the record's position, so a redelivery of the same record parks nothing new.
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"kafka://{record.topic}/{record.partition}/{record.offset}")
        logger.error("%s: unreadable record at %s parked as a dead letter: %s", module, source, error)
        dead_letter = dead_letter_park(
            alias,
            event_id=event_id,
            handler=UNPARSEABLE_HANDLER,
            event_type=event_type[:200],
            envelope={"raw": raw, "source": source},
            error=f"not an event envelope: {error!r}",
            attempts=1,
        )
        value = {
            "raw": raw,
            "source": source,
            "module": module,
            "handler": UNPARSEABLE_HANDLER,
            "dead_letter_id": dead_letter.pk,
            "error": dead_letter.error,
        }
        self.send(module, record.key, value, [("error", b"unparseable")])
        return dead_letter

    def send(self, module: str, key: bytes | None, value: dict[str, Any], headers: list[tuple[str, bytes]]) -> bool:
        """Send one record to ``module``'s DLQ topic and wait for the broker; False if it could not."""
        topic = dead_letter_topic(module)
        try:
            future = self._get_producer().send(topic, key=key, value=encode_json(value), headers=headers)
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

    def _get_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(client_id="quire-dead-letters")
            return self._producer
