"""publish(): an event becomes an outbox row in the caller's transaction."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

from django.db import connections, transaction
from django.utils import timezone

from messaging import metrics, tracing
from messaging.conf import messaging_settings
from messaging.correlation import current_correlation_id
from messaging.envelope import Envelope
from messaging.events import Event

Waker = Callable[[str], None]


def _no_waker(alias: str) -> None:
    """Until the app is ready no transport is chosen; the relay finds the rows anyway."""


#: What a commit that published calls with the alias: set by the transport layer (see
#: ``messaging.apps``), so that publishing, below it, never imports it.
_waker: Waker = _no_waker


def set_waker(waker: Waker) -> None:
    global _waker
    _waker = waker


class PublishOutsideTransaction(RuntimeError):
    """publish() was called where no transaction would keep the event with its change."""


def publish(event: Event) -> Envelope:
    """Record ``event`` in the outbox of its producing module's database.

    Must run inside ``transaction.atomic(using=<that module's alias>)``: the event
    commits or rolls back with the change it describes. After commit the transport
    is woken to carry it; if the process dies first, the relay finds the row later.
    """
    return publish_many([event])[0]


def publish_many(events: Sequence[Event], *, wake: bool = True) -> list[Envelope]:
    """:func:`publish` for many events of one producer at once: one multi-row outbox insert.

    The same rules as :func:`publish`. ``wake=False`` leaves waking the transport to
    the caller (a bulk import wakes it once at its end, not once per batch).
    """
    from messaging.models import OutboxMessage  # models need the app registry; the facade is imported before it

    if not events:
        return []
    for event in events:
        if not isinstance(event, Event) or not type(event).event_type:
            raise TypeError(f"publish() takes event contract instances, not {event!r}")
    producers = {type(event).producer() for event in events}
    if len(producers) != 1:
        raise ValueError(f"publish_many() takes one producer's events, not {sorted(producers)}'s")
    alias = messaging_settings.alias_for(producers.pop())
    if not connections[alias].in_atomic_block:
        names = ", ".join(sorted({type(event).__name__ for event in events}))
        raise PublishOutsideTransaction(
            f"publish({names}) must run inside transaction.atomic(using={alias!r}), "
            "so that the event is stored with the change it describes."
        )
    occurred_at, correlation_id, traceparent = timezone.now(), current_correlation_id(), tracing.current_traceparent()
    envelopes = [
        Envelope(
            event_type=type(event).event_type,
            event_version=type(event).event_version,
            aggregate_id=event.aggregate_id,
            producer=type(event).producer(),
            payload=event.to_payload(),
            occurred_at=occurred_at,
            correlation_id=correlation_id,
            traceparent=traceparent,
        )
        for event in events
    ]
    rows = [OutboxMessage.from_envelope(envelope) for envelope in envelopes]
    if len(rows) == 1:
        _insert_outbox_row(alias, rows[0])
    else:
        OutboxMessage.objects.using(alias).bulk_create(rows)
    transaction.on_commit(lambda: _count_published(envelopes), using=alias)
    if wake:
        transaction.on_commit(lambda: _waker(alias), using=alias)
    return envelopes


#: (alias, vendor) -> (the SQL of a one-row outbox insert, the fields whose values are its parameters, in order).
_outbox_inserts: dict[tuple[str, str], tuple[str, tuple]] = {}


def _insert_outbox_row(alias: str, row) -> None:
    """``bulk_create([row])`` of one ``OutboxMessage`` without compiling the same INSERT again: every publish() runs it.

    Django compiles the SQL once per alias (the columns left to their database default, the
    inserting transaction's id, as ``DEFAULT``, as the ORM writes them: every row leaves the same
    ones to it); each row's values are prepared by their fields as the ORM prepares them
    (``pre_save``, then ``get_db_prep_save``). Compiling was a sixth of a publish's CPU, and the id
    bulk_create reads back is not needed. Like bulk_create, a failed insert marks the caller's
    transaction for rollback, so that it cannot commit the change without its event.
    """
    connection = connections[alias]
    key = (alias, connection.vendor)
    compiled = _outbox_inserts.get(key)
    if compiled is None:
        compiled = _outbox_inserts[key] = _compile_one_row_insert(alias, row)
    statement, fields = compiled
    params = [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _compile_one_row_insert(alias: str, row) -> tuple[str, tuple]:
    from django.db.models import sql
    from django.db.models.expressions import DatabaseDefault

    model = type(row)
    fields = [field for field in model._meta.concrete_fields if not field.generated and not field.primary_key]
    query = sql.InsertQuery(model)
    query.insert_values(fields, [row])
    [(statement, params)] = query.get_compiler(using=alias).as_sql()
    # A column left to its database default (``db_default``) is SQL in the statement, not a parameter.
    valued = tuple(field for field in fields if not isinstance(field.pre_save(row, True), DatabaseDefault))
    if len(valued) != len(params):
        raise RuntimeError(f"the outbox insert on {alias!r} takes {len(params)} parameters, not {len(valued)}")
    return statement, valued


def _count_published(envelopes: list[Envelope]) -> None:
    # Counted at commit: a rolled-back event was never published.
    for (producer, event_type), count in collections.Counter((e.producer, e.event_type) for e in envelopes).items():
        metrics.EVENTS_PUBLISHED.labels(producer, event_type).inc(count)
