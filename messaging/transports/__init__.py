"""The transport carries outbox rows to handlers: in-process or through Kafka."""

from __future__ import annotations

import threading
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from messaging.envelope import Envelope


class Transport(Protocol):
    def wake(self, alias: str) -> None:
        """An outbox row committed on ``alias``: carry it soon."""

    def on_process_start(self) -> None:
        """Called once when a web process starts: pick up what a crash left behind."""

    def dead_lettered(self, envelope: Envelope, subscription, dead_letter) -> None:
        """A handler parked an event."""


_lock = threading.Lock()
_transport: Transport | None = None
_transport_name: str | None = None


def get_transport() -> Transport:
    global _transport, _transport_name
    name = settings.MESSAGING["TRANSPORT"]
    with _lock:
        if _transport is None or _transport_name != name:
            _transport, _transport_name = _build(name), name
        return _transport


def _build(name: str) -> Transport:
    if name == "inprocess":
        from messaging.transports.inprocess import InProcessTransport

        return InProcessTransport()
    if name == "kafka":
        try:
            from messaging.transports.kafka import KafkaTransport
        except ImportError as error:
            raise ImproperlyConfigured(
                f"EVENT_TRANSPORT=kafka is unavailable ({error}): install requirements/base.txt "
                "or set EVENT_TRANSPORT=inprocess."
            ) from error
        return KafkaTransport()
    raise ImproperlyConfigured(f"EVENT_TRANSPORT={name!r} is unknown: set it to 'inprocess' or 'kafka'.")
