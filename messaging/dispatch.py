"""Hand envelopes to every handler of the given modules that subscribes to them: one, or a batch."""

from __future__ import annotations

from messaging.delivery import OnPark, Outcome, deliver, deliver_batch
from messaging.envelope import Envelope
from messaging.registry import subscriptions_for


def dispatch(envelope: Envelope, modules: tuple[str, ...], *, on_park: OnPark | None = None) -> list[Outcome]:
    """Deliver to each subscribed handler; ``on_park`` hears of each event parked on the way."""
    return [
        deliver(envelope, subscription, on_park=on_park)
        for subscription in subscriptions_for(envelope.event_type, envelope.event_version, modules)
    ]


def dispatch_batch(
    envelopes: list[Envelope], modules: tuple[str, ...], *, on_park: OnPark | None = None
) -> list[list[Outcome]]:
    """:func:`dispatch` for several envelopes, in order, in batches: the outcomes of each envelope.

    A batch is a run of consecutive events with the same handlers (each handler's share of it in
    one transaction, :func:`deliver_batch`), so every handler still sees the events in their
    order, and no handler's event overtakes another handler's earlier one.
    """
    outcomes: list[list[Outcome]] = [[] for _ in envelopes]
    start, handlers = 0, []
    for index, envelope in enumerate([*envelopes, None]):
        these = [] if envelope is None else subscriptions_for(envelope.event_type, envelope.event_version, modules)
        if index > start and (envelope is None or these != handlers):
            for subscription in handlers:
                run = deliver_batch(envelopes[start:index], subscription, on_park=on_park)
                for position, outcome in enumerate(run, start):
                    outcomes[position].append(outcome)
            start = index
        handlers = these
    return outcomes
