"""Hand one envelope to every handler of the given modules that subscribes to it."""

from __future__ import annotations

from messaging.delivery import Outcome, deliver
from messaging.envelope import Envelope
from messaging.registry import subscriptions_for


def dispatch(envelope: Envelope, modules: tuple[str, ...]) -> list[Outcome]:
    return [
        deliver(envelope, subscription)
        for subscription in subscriptions_for(envelope.event_type, envelope.event_version, modules)
    ]
