"""Hand one envelope to every handler of the given modules that subscribes to it."""

from __future__ import annotations

from messaging.delivery import OnPark, Outcome, deliver
from messaging.envelope import Envelope
from messaging.registry import subscriptions_for


def dispatch(envelope: Envelope, modules: tuple[str, ...], *, on_park: OnPark | None = None) -> list[Outcome]:
    """Deliver to each subscribed handler; ``on_park`` hears of each event parked on the way."""
    return [
        deliver(envelope, subscription, on_park=on_park)
        for subscription in subscriptions_for(envelope.event_type, envelope.event_version, modules)
    ]
