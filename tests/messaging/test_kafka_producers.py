"""The relay's two producers without a broker: the same settings, errors, log levels, and a rebuild after a fatal error.

Their work against a real broker is in test_kafka_transport.py (the relay tests run with each
client), test_kafka_relay_clients.py and the fault drills.
"""

from __future__ import annotations

import logging
import threading

import pytest
from confluent_kafka import KafkaError as LibrdkafkaError
from confluent_kafka import KafkaException, Producer
from django.core.exceptions import ImproperlyConfigured
from kafka.errors import KafkaError

from messaging.kafka import pipeline
from messaging.kafka.clients import producer_config
from messaging.kafka.outbox import OutboxRecord
from messaging.kafka.pipeline import Sender
from messaging.kafka.producers import (
    ConfluentDelivery,
    ProducerError,
    RelayProducer,
    librdkafka_config,
    make_relay_producer,
)

UNREACHABLE = ["127.0.0.1:1"]


def test_librdkafka_is_given_the_guarantees_of_producer_config():
    config = producer_config(UNREACHABLE, client_id="quire-outbox-relay", allow_auto_create_topics=False)

    settings = librdkafka_config(config)

    assert settings["bootstrap.servers"] == "127.0.0.1:1"
    assert settings["client.id"] == "quire-outbox-relay"
    assert (settings["enable.idempotence"], settings["acks"]) == (True, "all")
    assert settings["max.in.flight.requests.per.connection"] == 5, "order kept across retries"
    assert settings["delivery.timeout.ms"] == config["delivery_timeout_ms"]
    assert settings["request.timeout.ms"] == config["request_timeout_ms"]
    assert (settings["linger.ms"], settings["batch.size"]) == (config["linger_ms"], config["batch_size"])
    assert settings["allow.auto.create.topics"] is False
    assert settings["partitioner"] == "murmur2_random", "kafka-python's partition for a key"
    Producer(settings)  # librdkafka accepts the combination (idempotence refuses, e.g., more than 5 in flight)


def test_a_setting_librdkafka_lacks_is_refused_not_dropped():
    with pytest.raises(ValueError, match="no librdkafka setting for metadata_max_age_ms"):
        librdkafka_config(producer_config(UNREACHABLE, metadata_max_age_ms=1000))


def test_an_unknown_client_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="set MESSAGING_RELAY_CLIENT to 'kafka-python' or 'confluent'"):
        make_relay_producer("librdkafka", UNREACHABLE)


def test_without_a_broker_the_confluent_producer_fails_at_start_like_kafka_python(caplog):
    caplog.set_level(logging.DEBUG, logger="librdkafka")

    with pytest.raises(KafkaError) as raised:
        make_relay_producer("confluent", UNREACHABLE, bootstrap_timeout_ms=1000)

    assert isinstance(raised.value, ProducerError)
    assert raised.value.code == LibrdkafkaError._TRANSPORT
    # librdkafka's lines reach Python logging: its reconnects at DEBUG, the error reports by their code.
    lines = [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "librdkafka"]
    assert any(level == logging.DEBUG and message.startswith("FAIL ") for level, message in lines), lines
    assert any(level == logging.INFO and "client error _TRANSPORT" in message for level, message in lines), lines
    assert not [line for line in lines if line[0] >= logging.WARNING], "a broker out of reach is the relay's to report"


def test_a_delivery_report_resolves_the_records_future():
    delivered, failed = ConfluentDelivery(), ConfluentDelivery()
    assert not (delivered.is_done or delivered.succeeded() or delivered.failed())

    delivered(None, object())
    failed(LibrdkafkaError(LibrdkafkaError._MSG_TIMED_OUT), object())

    assert delivered.succeeded() and not delivered.failed()
    assert failed.failed() and not failed.succeeded()
    assert isinstance(failed.exception, ProducerError) and "_MSG_TIMED_OUT" in str(failed.exception)


def test_a_fatal_error_carried_by_an_exception_stays_fatal():
    error = ProducerError.of(KafkaException(LibrdkafkaError(LibrdkafkaError._FATAL, "epoch gone", fatal=True)))
    assert error.fatal and isinstance(error, KafkaError)


class FailingForGood(RelayProducer):
    """A producer whose flush raises what librdkafka raises once its idempotence state broke."""

    delivery_timeout = 30.0
    made: list[FailingForGood] = []

    def __init__(self, *args, **kwargs) -> None:
        self.closed = False
        FailingForGood.made.append(self)

    def send(self, topic, *, key, value, headers):
        return ConfluentDelivery()  # never resolved: the broker's answer never comes

    def flush(self, timeout: float) -> bool:
        raise ProducerError(LibrdkafkaError(LibrdkafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "gap", fatal=True))

    def wait(self, delivery, timeout: float) -> None:
        self.flush(timeout)

    def poll(self) -> None:
        self.flush(0)

    def close(self, timeout: float) -> None:
        self.closed = True


def test_a_fatal_error_leaves_the_rows_unsent_and_the_next_batch_gets_a_new_producer(monkeypatch):
    FailingForGood.made.clear()
    monkeypatch.setattr(pipeline, "make_relay_producer", FailingForGood)
    sender = Sender(["t"], bootstrap_servers=UNREACHABLE, overrides={}, ensure=False, stop=threading.Event())
    rows = [OutboxRecord(row_id, b"1", b"{}", [("event_type", b"x"), ("event_id", b"e")]) for row_id in (1, 2)]

    batch = sender.send("t", rows)
    sender.await_acks(batch.sent, flush=True)

    assert not batch.complete and batch.acked == [], "no row counts as published"
    assert FailingForGood.made[0].closed, "the broken producer was dropped"
    sender.send("t", rows)
    assert len(FailingForGood.made) == 2, "the next batch went through a new producer"
    sender.poll()  # between rounds, as the relay does: the error surfaces there too
    assert FailingForGood.made[1].closed
    sender.send("t", rows)
    assert len(FailingForGood.made) == 3
