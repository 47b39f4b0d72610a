"""Apply one event to one handler: inbox dedupe, retries with backoff, dead letters.

Both transports go through :func:`deliver`, so a handler behaves the same whether
its event came in-process or from Kafka.
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
import uuid
from collections.abc import Callable

from django.db import connections, transaction
from django.utils import timezone
from opentelemetry.trace import SpanKind

from messaging import metrics, tracing
from messaging.conf import messaging_settings
from messaging.correlation import correlation
from messaging.envelope import Envelope
from messaging.events import InvalidEvent
from messaging.models import DeadLetter, InboxEntry
from messaging.registry import Subscription
from messaging.registry import subscription as find_subscription

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"  # only from a single attempt (redrive); nothing parked anew


def apply_once(envelope: Envelope, subscription: Subscription) -> Outcome:
    """Run the handler and record the inbox row in one transaction on its module's database."""
    alias = subscription.alias
    event = subscription.event_class.from_payload(envelope.payload, envelope)
    with transaction.atomic(using=alias), correlation(envelope.correlation_id):
        if not _inbox_claim(alias, envelope, subscription.name):
            return Outcome.DUPLICATE
        subscription.function(event)
    return Outcome.APPLIED


def _inbox_claim(alias: str, envelope: Envelope, handler: str) -> bool:
    """Insert the inbox row unless it exists; True if this delivery is the first.

    One ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL) instead of a read,
    a savepoint and an insert: it is on the path of every event. On PostgreSQL a concurrent
    delivery of the same event waits here for the other transaction, then sees its row.
    """
    connection = connections[alias]
    meta = InboxEntry._meta
    values = [
        meta.get_field("event_id").get_db_prep_value(envelope.event_id, connection),
        handler,
        envelope.event_type,
        meta.get_field("processed_at").get_db_prep_value(timezone.now(), connection),
    ]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} (event_id, handler, event_type, processed_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id, handler) DO NOTHING",
            values,
        )
        return cursor.rowcount == 1


def backoff_seconds(attempt: int) -> float:
    config = messaging_settings
    return min(config.BACKOFF_SECONDS * (2 ** (attempt - 1)), config.BACKOFF_MAX_SECONDS)


#: Called after a dead letter is parked (committed): the Kafka consumer copies it to the DLQ topic.
OnPark = Callable[[Envelope, Subscription, DeadLetter], None]


def deliver(envelope: Envelope, subscription: Subscription, *, on_park: OnPark | None = None) -> Outcome:
    """Deliver with retries; after the last attempt the event is parked and delivery goes on.

    Everything it does (and logs) belongs to the event's correlation id and runs in a CONSUMER
    span whose parent is the envelope's trace context; the outcome is counted per handler.
    """
    attributes = {
        "messaging.operation.type": "process",
        "messaging.message.id": str(envelope.event_id),
        "quire.event_type": envelope.event_type,
        "quire.handler": subscription.name,
    }
    with (
        correlation(envelope.correlation_id),
        tracing.span(
            f"{envelope.event_type} process",
            kind=SpanKind.CONSUMER,
            traceparent=envelope.traceparent,
            attributes=attributes,
        ) as span,
    ):
        outcome = _deliver(envelope, subscription, on_park)
        span.set_attribute("quire.outcome", outcome.value)
        metrics.EVENTS_HANDLED.labels(subscription.module, subscription.name, outcome.value).inc()
        if outcome is Outcome.APPLIED:
            logger.info(
                "%s applied %s %s",
                subscription.name,
                envelope.event_type,
                envelope.event_id,
                extra={"event_id": str(envelope.event_id), "event_type": envelope.event_type},
            )
        return outcome


def _deliver(envelope: Envelope, subscription: Subscription, on_park: OnPark | None) -> Outcome:
    attempts = messaging_settings.MAX_ATTEMPTS
    error_text = ""
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            outcome = apply_once(envelope, subscription)
        except InvalidEvent as error:
            # A payload that breaks its contract will not heal by retrying.
            error_text = str(error)
            break
        except Exception:
            error_text = traceback.format_exc()
            logger.warning(
                "handler %s failed on %s %s (attempt %d/%d)",
                subscription.name,
                envelope.event_type,
                envelope.event_id,
                attempt,
                attempts,
                exc_info=True,
            )
            if attempt < attempts:
                time.sleep(backoff_seconds(attempt))
            continue
        if outcome is Outcome.APPLIED:
            seconds = time.perf_counter() - started
            metrics.HANDLER_SECONDS.labels(subscription.module, subscription.name).observe(seconds)
        return outcome
    park(envelope, subscription, error_text, attempts=attempt, on_park=on_park)
    return Outcome.DEAD_LETTERED


def park(
    envelope: Envelope, subscription: Subscription, error: str, *, attempts: int, on_park: OnPark | None = None
) -> DeadLetter:
    logger.error("parking %s %s for %s as a dead letter", envelope.event_type, envelope.event_id, subscription.name)
    dead_letter = dead_letter_park(
        subscription.alias,
        event_id=envelope.event_id,
        handler=subscription.name,
        event_type=envelope.event_type,
        envelope=envelope.to_dict(),
        error=error,
        attempts=attempts,
    )
    if on_park is not None:
        on_park(envelope, subscription, dead_letter)
    return dead_letter


def dead_letter_park(
    alias: str, *, event_id: uuid.UUID, handler: str, event_type: str, envelope: dict, error: str, attempts: int
) -> DeadLetter:
    """Write (or refresh) the one dead-letter row of ``(event_id, handler)``: the only place one is written."""
    dead_letter, _ = DeadLetter.objects.using(alias).update_or_create(
        event_id=event_id,
        handler=handler,
        defaults={
            "event_type": event_type,
            "envelope": envelope,
            "error": error,
            "attempts": attempts,
            "status": DeadLetter.Status.PARKED,
        },
    )
    return dead_letter


def dead_letter_redrive(dead_letter: DeadLetter) -> Outcome:
    """Apply a parked event again, once. Success marks it redriven; failure records the new error."""
    alias = dead_letter._state.db
    subscription = find_subscription(dead_letter.handler)
    if subscription is None:
        raise LookupError(f"handler {dead_letter.handler} is not registered in this process")
    envelope = Envelope.from_dict(dead_letter.envelope)
    try:
        outcome = apply_once(envelope, subscription)
    except Exception:
        DeadLetter.objects.using(alias).filter(pk=dead_letter.pk).update(
            error=traceback.format_exc(), attempts=dead_letter.attempts + 1, updated_at=timezone.now()
        )
        return Outcome.FAILED
    DeadLetter.objects.using(alias).filter(pk=dead_letter.pk).update(
        status=DeadLetter.Status.REDRIVEN, redriven_at=timezone.now(), updated_at=timezone.now()
    )
    return outcome
