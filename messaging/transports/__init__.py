"""The transport carries outbox rows to handlers: in-process, or through Kafka (``messaging.kafka``).

``MESSAGING["TRANSPORT"]`` names it; the class is loaded by path (``messaging.conf``), so this
layer knows no transport above it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from messaging.conf import TRANSPORT_CLASSES, messaging_settings


class Transport(Protocol):
    def wake(self, alias: str) -> None:
        """An outbox row committed on ``alias``: carry it soon."""

    def on_process_start(self) -> None:
        """Called once when a web process starts: pick up what a crash left behind."""


_lock = threading.Lock()
_transport: Transport | None = None
_transport_name: str | None = None


def get_transport() -> Transport:
    global _transport, _transport_name
    name = messaging_settings.TRANSPORT
    with _lock:
        if _transport is None or _transport_name != name:
            _transport, _transport_name = _build(name), name
        return _transport


def wake(alias: str) -> None:
    """Ask the current transport to carry what is waiting in ``alias``'s outbox (publishing's on-commit waker)."""
    get_transport().wake(alias)


def deliver_pending(alias: str, on_progress: Callable[[int, int], None] | None = None) -> int:
    """Carry what waits in ``alias``'s outbox: a transport that delivers in this process does it now,
    reporting ``on_progress(done, total)``, and returns the count; another (Kafka) is only woken (0)."""
    transport = get_transport()
    deliver_now = getattr(transport, "deliver_pending", None)
    if deliver_now is None:
        transport.wake(alias)
        return 0
    return deliver_now(alias, on_progress)


def _build(name: str) -> Transport:
    if name not in TRANSPORT_CLASSES:
        raise ImproperlyConfigured(f"EVENT_TRANSPORT={name!r} is unknown: set it to 'inprocess' or 'kafka'.")
    try:
        transport_class = messaging_settings.transport_class(name)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"EVENT_TRANSPORT={name} is unavailable ({error}): install requirements/base.txt "
            "or set EVENT_TRANSPORT=inprocess."
        ) from error
    return transport_class()
