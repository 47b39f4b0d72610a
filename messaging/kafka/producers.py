"""The relay's producer behind one small interface: kafka-python's (the default) or librdkafka's.

``MESSAGING["RELAY_CLIENT"]`` (``MESSAGING_RELAY_CLIENT``) chooses the client that carries the
relay's records; the pipeline (``messaging.kafka.pipeline``) sees only :class:`RelayProducer` and
the :class:`Delivery` of each record, so both give the same guarantees from the same settings
(``producer_config()``): idempotent, ``acks=all``, at most 5 requests in flight (one partition's
records stay in order across retries), the same delivery timeout, linger and batch size.

- ``kafka-python`` (pure Python) is the default and what every other part of Quire uses.
- ``confluent`` is confluent-kafka, the Python binding of librdkafka (C): its sender thread
  batches and checksums records outside the interpreter, so the relay comes closer to the
  broker's own limit (docs/messaging.md, "The relay's Kafka client"). Its delivery reports
  arrive as callbacks served by ``poll()``/``flush()``; :class:`ConfluentDelivery` turns each
  into the future the pipeline waits on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from kafka.errors import KafkaError, KafkaTimeoutError

from messaging.kafka.clients import make_producer, producer_config

logger = logging.getLogger(__name__)
#: librdkafka's own log lines and client errors (its threads' view of the brokers).
librdkafka_logger = logging.getLogger("librdkafka")

RELAY_CLIENTS = ("kafka-python", "confluent")

#: ``producer_config()``'s names (kafka-python's) -> librdkafka's, for the settings librdkafka has.
LIBRDKAFKA_NAMES = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "max_in_flight_requests_per_connection": "max.in.flight.requests.per.connection",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "compression_type": "compression.type",
    "request_timeout_ms": "request.timeout.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "allow_auto_create_topics": "allow.auto.create.topics",
    "max_request_size": "message.max.bytes",
}
#: kafka-python's bounds on its blocking calls, which librdkafka lacks (it queues instead):
#: :class:`ConfluentProducer` keeps them itself (a metadata request at start, a full queue in send()).
KEPT_BY_THE_ADAPTER = ("bootstrap_timeout_ms", "max_block_ms")


class Delivery(Protocol):
    """One record's fate, as kafka-python's ``FutureRecordMetadata`` tells it."""

    is_done: bool
    exception: BaseException | None

    def succeeded(self) -> bool: ...

    def failed(self) -> bool: ...


class ProducerError(KafkaError):
    """An error of librdkafka, raised as kafka-python's base class so that the relay handles one kind.

    ``fatal``: the producer can do nothing more (e.g. the idempotence state broke); only a new one can.
    """

    def __init__(self, error: Any) -> None:
        # ``error`` is confluent_kafka.KafkaError (not imported here: the package is optional), or
        # what else a KafkaException carried.
        if not hasattr(error, "fatal"):
            super().__init__(str(error))
            self.code, self.fatal = None, False
            return
        super().__init__(f"{error.name()}: {error.str()}")
        self.code = error.code()
        self.fatal = bool(error.fatal())
        self.retriable = bool(error.retriable())

    @classmethod
    def of(cls, exception: BaseException) -> ProducerError:
        """The error a confluent_kafka.KafkaException carries."""
        return cls(exception.args[0] if exception.args else exception)


class RelayProducer(ABC):
    """What the relay needs of a producer: send, wait for acknowledgements, close."""

    #: Seconds after which the client itself fails a record it could not deliver (retries included).
    delivery_timeout: float

    @abstractmethod
    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivery:
        """Queue one record; ``KafkaError`` if it cannot even be queued (no metadata, full queue)."""

    @abstractmethod
    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued record; True when none is left."""

    @abstractmethod
    def wait(self, delivery: Delivery, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for one record's delivery (records queued after it may go on)."""

    @abstractmethod
    def poll(self) -> None:
        """Serve what the client reported meanwhile (its log lines, errors) without waiting."""

    @abstractmethod
    def close(self, timeout: float) -> None:
        """Give queued records up to ``timeout`` seconds, then drop the rest (they count as not delivered)."""


class KafkaPythonProducer(RelayProducer):
    """kafka-python's ``KafkaProducer``: its futures are already :class:`Delivery`."""

    def __init__(self, bootstrap_servers: list[str] | None = None, **overrides: Any) -> None:
        self._producer = make_producer(bootstrap_servers, **overrides)  # no broker at all: KafkaError
        self.delivery_timeout = self._producer.config["delivery_timeout_ms"] / 1000

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivery:
        return self._producer.send(topic, key=key, value=value, headers=headers)

    def flush(self, timeout: float) -> bool:
        try:
            self._producer.flush(timeout=timeout)
        except KafkaTimeoutError:
            return False
        return True

    def wait(self, delivery: Delivery, timeout: float) -> None:
        with contextlib.suppress(KafkaError):
            delivery.get(timeout=timeout)

    def poll(self) -> None:
        """Nothing waits to be served: kafka-python's sender thread logs and resolves futures itself."""

    def close(self, timeout: float) -> None:
        self._producer.close(timeout=timeout)


class ConfluentDelivery:
    """A record's future, resolved by librdkafka's delivery report (``on_delivery``) in poll()/flush()."""

    __slots__ = ("exception", "is_done")

    def __init__(self) -> None:
        self.is_done = False
        self.exception: BaseException | None = None

    def __call__(self, error, message) -> None:
        if error is not None:
            self.exception = ProducerError(error)
        self.is_done = True

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None


def librdkafka_config(config: dict[str, Any]) -> dict[str, Any]:
    """librdkafka's settings for a ``producer_config()``: the same guarantees under librdkafka's names.

    A setting librdkafka has no counterpart for is an error, not silently dropped.
    """
    unknown = sorted(set(config) - set(LIBRDKAFKA_NAMES) - set(KEPT_BY_THE_ADAPTER))
    if unknown:
        raise ValueError(f"no librdkafka setting for {', '.join(unknown)}: the confluent relay client cannot honour it")
    translated: dict[str, Any] = {
        # kafka-python's (and Java's) murmur2 hash of the key: an aggregate's events land on the same
        # partition whichever client published them (librdkafka's default hashes with CRC32).
        "partitioner": "murmur2_random",
        # kafka-python's default, and the most idempotence allows while keeping order across retries.
        "max.in.flight.requests.per.connection": 5,
        # librdkafka's producer default is to let the broker create a topic on first use; kafka-python's is not.
        "allow.auto.create.topics": False,
    }
    for name, value in config.items():
        if name in LIBRDKAFKA_NAMES:
            translated[LIBRDKAFKA_NAMES[name]] = ",".join(value) if name == "bootstrap_servers" else value
    return translated


#: syslog's levels, which librdkafka's ``log_level`` counts in, for the least severe Python level shown.
_SYSLOG_LEVELS = ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3))


def _syslog_level(python_level: int) -> int:
    return next((syslog for level, syslog in _SYSLOG_LEVELS if python_level <= level), 2)


class _LibrdkafkaLog:
    """librdkafka's log lines to the ``librdkafka`` logger (confluent-kafka maps syslog to Python levels).

    A broker it cannot reach is logged at ERR ("FAIL") on every reconnect, and reported to the error
    callback too, with its error code: :func:`_client_error` decides the level of that report, so the
    log line itself is demoted to DEBUG.
    """

    def log(self, level: int, message: str, facility: str, name: str, text: str) -> None:
        if facility == "FAIL":
            level = logging.DEBUG
        librdkafka_logger.log(level, message, facility, name, text)


_librdkafka_log = _LibrdkafkaLog()


def _client_error(error) -> None:
    """librdkafka's error callback: a broker out of reach is the relay's to report (it retries), others are news.

    A fatal error never comes here: confluent-kafka raises it from poll()/flush() (see ConfluentProducer).
    """
    from confluent_kafka import KafkaError as LibrdkafkaError

    transient = (LibrdkafkaError._TRANSPORT, LibrdkafkaError._ALL_BROKERS_DOWN, LibrdkafkaError._RESOLVE)
    level = logging.WARNING if error.retriable() else logging.ERROR
    if error.code() in transient:
        level = logging.INFO
    librdkafka_logger.log(level, "client error %s: %s", error.name(), error.str())


class ConfluentProducer(RelayProducer):
    """confluent-kafka's ``Producer`` (librdkafka), with kafka-python's bounds on waiting kept here."""

    def __init__(self, bootstrap_servers: list[str] | None = None, **overrides: Any) -> None:
        from confluent_kafka import KafkaException, Producer

        self._exception = KafkaException
        config = producer_config(bootstrap_servers, **overrides)
        self.delivery_timeout = config["delivery_timeout_ms"] / 1000
        self._max_block = config["max_block_ms"] / 1000
        settings = {
            **librdkafka_config(config),
            "log_level": _syslog_level(librdkafka_logger.getEffectiveLevel()),
            # Module-level callbacks: nothing of theirs refers back to the producer, so dropping it frees it at once.
            "error_cb": _client_error,
        }
        self._producer = Producer(settings, logger=_librdkafka_log)
        # kafka-python's constructor fails without a broker (bootstrap_timeout_ms); librdkafka would
        # queue records until their delivery timeout. One metadata request keeps the fast failure.
        try:
            self._call(self._producer.list_topics, timeout=config["bootstrap_timeout_ms"] / 1000)
        except KafkaError:
            self._discard()
            raise

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivery:
        delivery = ConfluentDelivery()
        deadline = None
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivery, headers=headers)
                return delivery
            except BufferError:
                # The local queue is full (queue.buffering.max.*): deliveries served make room, as
                # kafka-python's send() blocks for buffer space, for at most max_block_ms.
                deadline = deadline or time.monotonic() + self._max_block
                if time.monotonic() > deadline:
                    raise KafkaTimeoutError(f"the producer's queue stayed full for {self._max_block:g}s") from None
                self._call(self._producer.poll, 0.1)
            except self._exception as error:
                raise ProducerError.of(error) from error

    def flush(self, timeout: float) -> bool:
        return self._call(self._producer.flush, timeout) == 0

    def wait(self, delivery: Delivery, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not delivery.is_done and (left := deadline - time.monotonic()) > 0:
            self._call(self._producer.poll, left)  # returns as soon as any report was served

    def poll(self) -> None:
        self._call(self._producer.poll, 0)

    def close(self, timeout: float) -> None:
        with contextlib.suppress(KafkaError):
            if timeout > 0:
                self.flush(timeout)
        self._discard()

    def _discard(self) -> None:
        """Fail what is left (queued or in flight: never acknowledged now), serve those reports, destroy."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        with contextlib.suppress(Exception):
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(0)
        # The last reference: librdkafka's handle is destroyed here (Producer.close() would flush without a bound).
        del producer

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except self._exception as error:
            raise ProducerError.of(error) from error


def make_relay_producer(client: str, bootstrap_servers: list[str] | None = None, **overrides: Any) -> RelayProducer:
    """A connected producer of ``client`` (one of :data:`RELAY_CLIENTS`); ``KafkaError`` if no broker answers."""
    if client == "kafka-python":
        return KafkaPythonProducer(bootstrap_servers, **overrides)
    if client == "confluent":
        return ConfluentProducer(bootstrap_servers, **overrides)
    raise ImproperlyConfigured(
        f"MESSAGING_RELAY_CLIENT={client!r} is unknown: set MESSAGING_RELAY_CLIENT to 'kafka-python' or 'confluent'."
    )
