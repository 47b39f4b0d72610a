"""The shared kernel for events between modules.

A module declares its events in ``contracts.py`` as subclasses of :class:`Event`,
publishes them with :func:`publish` inside its service's transaction, and reacts to
other modules' events with :func:`handles` in ``handlers.py``. Which transport
carries them (in-process or Kafka) is configuration, invisible to the module.
"""

from messaging.envelope import Envelope
from messaging.events import Event, InvalidEvent
from messaging.publishing import PublishOutsideTransaction, publish, publish_many
from messaging.registry import handles

__all__ = ["Envelope", "Event", "InvalidEvent", "PublishOutsideTransaction", "handles", "publish", "publish_many"]
