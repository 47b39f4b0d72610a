"""A probe event and a controllable handler, to test the kernel without any module's code."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connections, transaction

from messaging import Event, publish
from messaging.registry import Subscription, register, unregister


class ProbeHappened(Event):
    event_type = "catalog.ProbeHappened"
    event_version = 1
    aggregate_field = "probe_id"

    probe_id: int
    note: str = ""


@dataclass
class ProbeHandler:
    """Records what it received; fails the first ``failures`` calls."""

    failures: int = 0
    received: list[ProbeHappened] = field(default_factory=list)
    calls: int = 0

    def __call__(self, event: ProbeHappened) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"probe failure {self.calls}")
        self.received.append(event)


PROBE_HANDLER_NAME = "orders.handlers.probe"


@pytest.fixture
def probe_handler():
    handler = ProbeHandler()
    register(Subscription("orders", PROBE_HANDLER_NAME, ProbeHappened, handler))
    yield handler
    unregister(PROBE_HANDLER_NAME)


def publish_probe(probe_id: int, note: str = "") -> None:
    with transaction.atomic(using="catalog"):
        publish(ProbeHappened(probe_id=probe_id, note=note))


def use_kafka_transport(settings, **messaging) -> list[str]:
    """Switch the test to the Kafka transport with a topic prefix of its own; the bootstrap servers.

    Fails (not skips) without a broker or PostgreSQL: the real-server stage of make test gives both.
    """
    from django.conf import settings as django_settings
    from django.db import connections

    if not django_settings.KAFKA_BOOTSTRAP_SERVERS:
        pytest.fail('KAFKA_BOOTSTRAP_SERVERS is not set: eval "$(scripts/dev/kafka.sh env)" first.')
    if connections["catalog"].vendor != "postgresql" or connections["orders"].vendor != "postgresql":
        pytest.fail('these tests need PostgreSQL: eval "$(scripts/dev/postgres.sh env)" first.')
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.MESSAGING = {**settings.MESSAGING, "TRANSPORT": "kafka", "TOPIC_PREFIX": prefix, **messaging}
    return list(django_settings.KAFKA_BOOTSTRAP_SERVERS)


@contextlib.contextmanager
def relay_running(relay) -> Iterator[None]:
    """``relay.run()`` in a thread of its own for the block (its connections closed when it ends); stopped after."""

    def run() -> None:
        try:
            relay.run()
        finally:
            connections.close_all()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        yield
    finally:
        relay.stop()
        runner.join(30)
    assert not runner.is_alive(), "the relay did not stop"
