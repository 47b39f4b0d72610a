"""The shared kernel for events between modules.

A module declares its events in ``contracts.py`` as subclasses of :class:`Event`,
publishes them with :func:`publish` inside its service's transaction, and reacts to
other modules' events with :func:`handles` in ``handlers.py``. Which transport
carries them (in-process or Kafka) is configuration, invisible to the module.

This facade is all a module imports from ``messaging``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from messaging.envelope import Envelope
from messaging.events import Event, InvalidEvent
from messaging.progress import Progress
from messaging.publishing import PublishOutsideTransaction, publish, publish_many
from messaging.registry import handles, handles_batch
from messaging.routing import ModuleRouter
from messaging.transports import deliver_pending as _deliver_pending
from messaging.transports import wake as _wake_transport


def wake(alias: str) -> None:
    """Ask the transport to carry what is waiting in ``alias``'s outbox now.

    For code that published with ``publish_many(..., wake=False)`` (a bulk import wakes
    the transport once, at its end, not once per batch).
    """
    _wake_transport(alias)


def deliver_pending(alias: str, on_progress: Callable[[int, int], None] | None = None) -> int:
    """Carry what waits in ``alias``'s outbox, for an operator command that shows it.

    In-process this delivers every pending event now (an interrupted earlier run's too), calling
    ``on_progress(done, total)`` as it goes, and returns how many; with Kafka it wakes the relay,
    which delivers outside the command, and returns 0.
    """
    return _deliver_pending(alias, on_progress)


def occurred_at(event: Event) -> datetime:
    """When the fact happened: the envelope's time, or now for an event not yet delivered."""
    envelope = event.envelope
    return envelope.occurred_at if envelope is not None else timezone.now()


__all__ = [
    "Envelope",
    "Event",
    "InvalidEvent",
    "ModuleRouter",
    "Progress",
    "PublishOutsideTransaction",
    "deliver_pending",
    "handles",
    "handles_batch",
    "occurred_at",
    "publish",
    "publish_many",
    "wake",
]
