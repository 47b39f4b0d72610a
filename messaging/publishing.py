"""publish(): an event becomes an outbox row in the caller's transaction."""

from __future__ import annotations

from django.db import connections, transaction
from django.utils import timezone

from config import topology
from messaging.correlation import current_correlation_id
from messaging.envelope import Envelope
from messaging.events import Event


class PublishOutsideTransaction(RuntimeError):
    """publish() was called where no transaction would keep the event with its change."""


def publish(event: Event) -> Envelope:
    """Record ``event`` in the outbox of its producing module's database.

    Must run inside ``transaction.atomic(using=<that module's alias>)``: the event
    commits or rolls back with the change it describes. After commit the transport
    is woken to carry it; if the process dies first, the relay finds the row later.
    """
    from messaging.models import OutboxMessage
    from messaging.transports import get_transport

    if not isinstance(event, Event) or not type(event).event_type:
        raise TypeError(f"publish() takes an event contract instance, not {event!r}")
    alias = topology.alias_for_module(type(event).producer())
    if not connections[alias].in_atomic_block:
        raise PublishOutsideTransaction(
            f"publish({type(event).__name__}) must run inside transaction.atomic(using={alias!r}), "
            "so that the event is stored with the change it describes."
        )
    envelope = Envelope(
        event_type=type(event).event_type,
        event_version=type(event).event_version,
        aggregate_id=event.aggregate_id,
        producer=type(event).producer(),
        payload=event.to_payload(),
        occurred_at=timezone.now(),
        correlation_id=current_correlation_id(),
    )
    OutboxMessage.objects.using(alias).create(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        event_version=envelope.event_version,
        aggregate_id=envelope.aggregate_id,
        producer=envelope.producer,
        correlation_id=envelope.correlation_id,
        payload=envelope.payload,
        occurred_at=envelope.occurred_at,
    )
    transaction.on_commit(lambda: get_transport().wake(alias), using=alias)
    return envelope
