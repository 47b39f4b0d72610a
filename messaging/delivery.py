"""Apply events to one handler: inbox dedupe, retries with backoff, dead letters, their metrics and log lines.

Both transports go through :func:`deliver` (one event) or :func:`deliver_batch` (several, in one
transaction), so a handler behaves the same whether its event came in-process or from Kafka.
"""

from __future__ import annotations

import contextlib
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


def _inbox_claim_many(alias: str, envelopes: list[Envelope], handler: str) -> set[uuid.UUID]:
    """Insert the inbox rows of ``envelopes`` in one statement; the event ids that were new.

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite >= 3.35): the rows
    that already existed (duplicates) are not returned.
    """
    connection = connections[alias]
    meta = InboxEntry._meta
    event_id, processed_at = meta.get_field("event_id"), meta.get_field("processed_at")
    now = processed_at.get_db_prep_value(timezone.now(), connection)
    values: list[object] = []
    for envelope in envelopes:
        values += [event_id.get_db_prep_value(envelope.event_id, connection), handler, envelope.event_type, now]
    quote = connection.ops.quote_name
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(envelopes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} (event_id, handler, event_type, processed_at) "
            f"VALUES {rows} ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id",
            values,
        )
        # SQLite returns the stored hex text, PostgreSQL a UUID: one form for both.
        return {uuid.UUID(str(value)) for (value,) in cursor.fetchall()}


def _inbox_release(alias: str, envelopes: list[Envelope], handler: str) -> None:
    """Take back claims made in this transaction (for events not applied in it after all)."""
    event_ids = [envelope.event_id for envelope in envelopes]
    InboxEntry.objects.using(alias).filter(event_id__in=event_ids, handler=handler).delete()


class _HandlerFailed(Exception):
    """A handler raised in a batch applied without savepoints: its whole transaction is rolled back."""

    def __init__(self, envelope: Envelope, error_text: str) -> None:
        super().__init__(envelope.event_id)
        self.envelope, self.error_text = envelope, error_text


def apply_batch(
    envelopes: list[Envelope], subscription: Subscription
) -> tuple[dict[uuid.UUID, Outcome], tuple[Envelope, str] | None, list[Envelope]]:
    """Apply ``envelopes`` in order with their inbox rows, in one transaction on the handler's database.

    Stops at the first event that fails: the events before it commit, it is taken back (claim
    included) and returned with the ones after it, so that :func:`deliver` retries (and parks) it
    alone before any later event is applied, as with one-by-one delivery. Returns (outcomes of the
    committed events, the failed one with its error, "" for a payload that breaks its contract, and
    the rest).

    A savepoint per event costs two round trips to the database (``SAVEPOINT``, ``RELEASE``), more
    than a simple handler's own work, and is only needed when a handler fails. So the batch is
    first applied without them; if a handler raises, that transaction is rolled back as a whole
    (inbox claims included), the events before the failing one are applied again (with a savepoint
    each, in case one of them fails now), and the failing one is returned with that run as its first
    attempt, so that a handler never runs more often than ``MESSAGING_MAX_ATTEMPTS`` for an event.
    """
    try:
        return _apply_batch(envelopes, subscription, savepoints=False)
    except _HandlerFailed as failed:
        logger.warning(
            "handler %s failed on %s %s in a batch: delivering it alone",
            subscription.name,
            failed.envelope.event_type,
            failed.envelope.event_id,
            exc_info=failed.__cause__,
        )
        position = next(i for i, envelope in enumerate(envelopes) if envelope is failed.envelope)
        before, after = envelopes[:position], envelopes[position + 1 :]
        outcomes, failure, rest = _apply_batch(before, subscription, savepoints=True) if before else ({}, None, [])
        # An event before it failed this time (a handler that fails now and then): that one goes first, and
        # this one, after it, gets its full attempts again (one handler run more than the limit, at worst).
        if failure is not None:
            return outcomes, failure, [*rest, failed.envelope, *after]
        return outcomes, (failed.envelope, failed.error_text), after


def _apply_batch(
    envelopes: list[Envelope], subscription: Subscription, *, savepoints: bool
) -> tuple[dict[uuid.UUID, Outcome], tuple[Envelope, str] | None, list[Envelope]]:
    alias, name = subscription.alias, subscription.name
    outcomes: dict[uuid.UUID, Outcome] = {}
    durations: list[float] = []
    failure, rest = None, []
    with transaction.atomic(using=alias):
        claimed = _inbox_claim_many(alias, envelopes, name)
        todo = []
        for envelope in envelopes:
            if envelope.event_id not in claimed:
                outcomes[envelope.event_id] = Outcome.DUPLICATE
                continue
            try:
                todo.append((envelope, subscription.event_class.from_payload(envelope.payload, envelope)))
            except InvalidEvent:
                todo.append((envelope, None))  # fails below, in its place
        if subscription.batch_function is not None and len(todo) > 1 and _apply_bulk(subscription, todo):
            outcomes.update((envelope.event_id, Outcome.APPLIED) for envelope, _ in todo)
            return outcomes, None, []
        for position, (envelope, event) in enumerate(todo):
            try:
                if event is None:
                    raise InvalidEvent(f"{envelope.event_type} {envelope.event_id} breaks its contract")
                started = time.perf_counter()
                with (
                    transaction.atomic(using=alias) if savepoints else contextlib.nullcontext(),
                    correlation(envelope.correlation_id),
                    _process_span(envelope, subscription),
                ):
                    subscription.function(event)
                durations.append(time.perf_counter() - started)
            except Exception as error:
                error_text = "" if isinstance(error, InvalidEvent) else traceback.format_exc()
                if not savepoints:
                    raise _HandlerFailed(envelope, error_text) from error  # rolls the whole transaction back
                logger.warning(
                    "handler %s failed on %s %s in a batch: delivering it alone",
                    name,
                    envelope.event_type,
                    envelope.event_id,
                    exc_info=True,
                )
                # Nothing after it is applied now: release their claims too, they go in the next batch.
                _inbox_release(alias, [later for later, _ in todo[position:]], name)
                rest = [later for later in envelopes if later.event_id not in outcomes and later is not envelope]
                failure = (envelope, error_text)
                break
            outcomes[envelope.event_id] = Outcome.APPLIED
    for seconds in durations:  # of the events committed
        metrics.HANDLER_SECONDS.labels(subscription.module, name).observe(seconds)
    return outcomes, failure, rest


def _apply_bulk(subscription: Subscription, todo: list) -> bool:
    """The handler's bulk form over ``todo`` under a savepoint; False (rolled back) if it raised."""
    if any(event is None for _, event in todo):
        return False
    started = time.perf_counter()
    try:
        with transaction.atomic(using=subscription.alias):
            subscription.batch_function([event for _, event in todo])
    except Exception:
        logger.warning("bulk handler of %s failed: applying its events one by one", subscription.name, exc_info=True)
        return False
    # One call for all: each event is counted with its share of the time.
    share = (time.perf_counter() - started) / len(todo)
    histogram = metrics.HANDLER_SECONDS.labels(subscription.module, subscription.name)
    for _ in todo:
        histogram.observe(share)
    return True


def backoff_seconds(attempt: int) -> float:
    config = messaging_settings
    return min(config.BACKOFF_SECONDS * (2 ** (attempt - 1)), config.BACKOFF_MAX_SECONDS)


#: Called after a dead letter is parked (committed): the Kafka consumer copies it to the DLQ topic.
OnPark = Callable[[Envelope, Subscription, DeadLetter], None]


def _process_span(envelope: Envelope, subscription: Subscription):
    """The CONSUMER span of one event's handling, a child of the envelope's trace context."""
    return tracing.span(
        f"{envelope.event_type} process",
        kind=SpanKind.CONSUMER,
        traceparent=envelope.traceparent,
        attributes={
            "messaging.operation.type": "process",
            "messaging.message.id": str(envelope.event_id),
            "quire.event_type": envelope.event_type,
            "quire.handler": subscription.name,
        },
    )


def _report(envelope: Envelope, subscription: Subscription, outcome: Outcome) -> None:
    """Count an event's outcome per handler and log the applied ones, under the event's correlation id."""
    metrics.EVENTS_HANDLED.labels(subscription.module, subscription.name, outcome.value).inc()
    if outcome is Outcome.APPLIED:
        _log_applied([envelope], subscription)


def _report_batch(envelopes: list[Envelope], subscription: Subscription, outcomes: dict[uuid.UUID, Outcome]) -> None:
    """:func:`_report` for a batch's events, in order: one log line per run of applied events of one correlation id.

    A line per event cost more than a book copy's bulk form applying it (an import delivers
    10,000 events with one correlation id); grouped, every event id is still in a line
    (``event_ids``, in JSON logs), under its own correlation id, and an event applied alone keeps
    its own line. A subscription has one event type, so a run never mixes types; the check only
    keeps it so.
    """
    counts: dict[Outcome, int] = {}
    run: list[Envelope] = []
    for envelope in envelopes:
        outcome = outcomes.get(envelope.event_id)
        if outcome is None:
            continue
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome is not Outcome.APPLIED:
            continue
        if run and (run[-1].correlation_id, run[-1].event_type) != (envelope.correlation_id, envelope.event_type):
            _log_applied(run, subscription)
            run = []
        run.append(envelope)
    if run:
        _log_applied(run, subscription)
    for outcome, count in counts.items():
        metrics.EVENTS_HANDLED.labels(subscription.module, subscription.name, outcome.value).inc(count)


def _log_applied(envelopes: list[Envelope], subscription: Subscription) -> None:
    """One line for events of one correlation id applied by one handler: each event's id is in it."""
    first = envelopes[0]
    # The handler's module, not the kernel's logger's: the line belongs to that module.
    extra: dict = {"event_type": first.event_type, "quire_module": subscription.module}
    with correlation(first.correlation_id):
        if len(envelopes) == 1:
            extra["event_id"] = str(first.event_id)
            logger.info("%s applied %s %s", subscription.name, first.event_type, first.event_id, extra=extra)
        else:
            extra["event_ids"] = [str(envelope.event_id) for envelope in envelopes]
            logger.info(
                "%s applied %d %s events, %s to %s",
                subscription.name,
                len(envelopes),
                first.event_type,
                first.event_id,
                envelopes[-1].event_id,
                extra=extra,
            )


def deliver(
    envelope: Envelope, subscription: Subscription, *, on_park: OnPark | None = None, failed_in_batch: str = ""
) -> Outcome:
    """Deliver with retries; after the last attempt the event is parked and delivery goes on.

    ``failed_in_batch``: the error of an attempt already made in a batch (:func:`deliver_batch`),
    which counts as the first attempt. Everything it does (and logs) belongs to the event's
    correlation id and runs in a CONSUMER span whose parent is the envelope's trace context; the
    outcome is counted per handler.
    """
    with correlation(envelope.correlation_id), _process_span(envelope, subscription) as span:
        outcome = _deliver(envelope, subscription, on_park, failed_in_batch)
        span.set_attribute("quire.outcome", outcome.value)
        _report(envelope, subscription, outcome)
        return outcome


def _deliver(envelope: Envelope, subscription: Subscription, on_park: OnPark | None, failed_in_batch: str) -> Outcome:
    attempts = messaging_settings.MAX_ATTEMPTS
    error_text = failed_in_batch
    attempt = done = 1 if failed_in_batch else 0
    if done and done < attempts:
        time.sleep(backoff_seconds(done))
    for attempt in range(done + 1, attempts + 1):
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


def deliver_batch(
    envelopes: list[Envelope], subscription: Subscription, *, on_park: OnPark | None = None
) -> list[Outcome]:
    """:func:`deliver` for several events of one handler, in order: one transaction per run of successes.

    Each event still takes effect exactly once (its inbox row commits with its effect). One that
    fails is rolled back alone, the events before it commit, and it is delivered alone (retries,
    dead letter) before the batch goes on with the events after it, so the order is that of
    one-by-one delivery. If a batch transaction itself cannot commit, its events are delivered one
    by one. Outcomes are in the order of ``envelopes``.
    """
    if len(envelopes) == 1:
        return [deliver(envelopes[0], subscription, on_park=on_park)]
    outcomes: dict[uuid.UUID, Outcome] = {}
    remaining = list({envelope.event_id: envelope for envelope in envelopes}.values())
    while remaining:
        remaining_before, batch_applied = remaining, True
        try:
            applied, failed, remaining = apply_batch(remaining, subscription)
        except Exception:
            logger.warning("batch for %s failed: delivering one by one", subscription.name, exc_info=True)
            applied, failed, batch_applied = {}, None, False  # deliver() reports each one
            for envelope in remaining:
                applied[envelope.event_id] = deliver(envelope, subscription, on_park=on_park)
            remaining = []
        if batch_applied:
            _report_batch(remaining_before, subscription, applied)
        outcomes.update(applied)
        if failed is not None:
            envelope, error_text = failed
            outcomes[envelope.event_id] = deliver(envelope, subscription, on_park=on_park, failed_in_batch=error_text)
    # An event repeated within the batch (a redelivery) took effect at its first place only.
    seen: set[uuid.UUID] = set()
    result = []
    for envelope in envelopes:
        result.append(Outcome.DUPLICATE if envelope.event_id in seen else outcomes[envelope.event_id])
        seen.add(envelope.event_id)
    return result


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
