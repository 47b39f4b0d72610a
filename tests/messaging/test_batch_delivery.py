"""Batched delivery: one transaction per handler and batch, each event's effect exactly once."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import publish_many
from messaging.correlation import current_correlation_id
from messaging.delivery import Outcome, deliver, deliver_batch
from messaging.dispatch import dispatch_batch
from messaging.envelope import Envelope
from messaging.models import DeadLetter, InboxEntry, OutboxMessage
from messaging.registry import Subscription, handles_batch, register, subscription, unregister
from messaging.transports import deliver_pending, get_transport
from tests.messaging.probes import ProbeHappened

pytestmark = pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)

NAME = "orders.handlers.batch_probe"


def effects() -> list[int]:
    """What the handler wrote in its own database (orders), by probe id, in write order."""
    rows = OutboxMessage.objects.using("orders").filter(event_type="orders.ProbeEffect").order_by("id")
    return [int(row.aggregate_id) for row in rows]


FLAKY_FAILURES: set[uuid.UUID] = set()


def write_effect(event: ProbeHappened) -> None:
    if event.note == "poison":
        raise RuntimeError(f"cannot apply probe {event.probe_id}")
    if event.note == "flaky" and event.envelope.event_id not in FLAKY_FAILURES:
        FLAKY_FAILURES.add(event.envelope.event_id)  # fails its first attempt only
        raise RuntimeError(f"probe {event.probe_id} failed once")
    OutboxMessage.objects.using("orders").create(
        event_id=uuid.uuid4(),
        event_type="orders.ProbeEffect",
        event_version=1,
        aggregate_id=str(event.probe_id),
        producer="orders",
        payload={},
        occurred_at=timezone.now(),
    )


@pytest.fixture
def effect_handler():
    register(Subscription("orders", NAME, ProbeHappened, write_effect))
    yield subscription(NAME)
    unregister(NAME)


def envelopes(*notes: str) -> list[Envelope]:
    """Envelopes as the transports hand them on (probe ids 0, 1, ... in order)."""
    return [
        Envelope(
            event_type=ProbeHappened.event_type,
            event_version=ProbeHappened.event_version,
            aggregate_id=str(i),
            producer="catalog",
            payload=ProbeHappened(probe_id=i, note=note).to_payload(),
            occurred_at=timezone.now(),
        )
        for i, note in enumerate(notes)
    ]


def test_a_batch_is_applied_in_order_with_an_inbox_row_per_event(effect_handler):
    batch = envelopes("a", "b", "c")

    outcomes = deliver_batch(batch, effect_handler)

    assert outcomes == [Outcome.APPLIED] * 3
    assert effects() == [0, 1, 2]
    assert set(InboxEntry.objects.using("orders").values_list("event_id", flat=True)) == {e.event_id for e in batch}


def test_a_batch_logs_one_line_per_run_of_one_correlation_id_naming_every_event(effect_handler, caplog):
    """A line per event cost more than a bulk form applying it; grouped, each id is still in a line, in its context."""
    batch = [
        dataclasses.replace(envelope, correlation_id=correlation_id)
        for envelope, correlation_id in zip(
            envelopes("a", "b", "c", "d"), ["import-1", "import-1", "import-1", "request-2"], strict=True
        )
    ]
    caplog.set_level(logging.INFO, logger="messaging.delivery")
    correlation_ids: dict[int, str] = {}  # the correlation id each line was written under, by record

    def remember(record: logging.LogRecord) -> bool:
        correlation_ids[id(record)] = current_correlation_id()
        return True

    caplog.handler.addFilter(remember)

    assert deliver_batch(batch, effect_handler) == [Outcome.APPLIED] * 4

    lines = [record for record in caplog.records if " applied " in record.getMessage()]
    assert [(correlation_ids[id(line)], line.quire_module) for line in lines] == [
        ("import-1", "orders"),
        ("request-2", "orders"),
    ]
    assert lines[0].event_ids == [str(envelope.event_id) for envelope in batch[:3]]
    assert lines[0].getMessage().startswith(f"{NAME} applied 3 {ProbeHappened.event_type} events")
    assert lines[1].getMessage() == f"{NAME} applied {ProbeHappened.event_type} {batch[3].event_id}"
    assert lines[1].event_id == str(batch[3].event_id)


def test_a_batch_that_succeeds_takes_no_savepoint_per_event(effect_handler):
    """Savepoints (two round trips each) are only taken when a handler failed and the batch is applied again."""
    with CaptureQueriesContext(connections["orders"]) as statements:
        assert deliver_batch(envelopes("a", "b", "c", "d"), effect_handler) == [Outcome.APPLIED] * 4
    assert not [query["sql"] for query in statements if "SAVEPOINT" in query["sql"].upper()]
    with CaptureQueriesContext(connections["orders"]) as statements:
        assert deliver_batch(envelopes("e", "poison", "f"), effect_handler)[0] is Outcome.APPLIED
    assert [query for query in statements if "SAVEPOINT" in query["sql"].upper()], "the second pass isolates it"


def test_a_failing_event_runs_its_handler_no_more_than_max_attempts_times(settings):
    """The batch run without savepoints that found the failure counts as the event's first attempt."""
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3, "BACKOFF_SECONDS": 0.0}
    calls: list[str] = []

    def counting(event: ProbeHappened) -> None:
        calls.append(event.note)
        write_effect(event)

    register(Subscription("orders", NAME, ProbeHappened, counting))
    try:
        outcomes = deliver_batch(envelopes("a", "poison", "b"), subscription(NAME))
    finally:
        unregister(NAME)
    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert calls.count("poison") == 3
    assert effects() == [0, 2]


def test_events_already_in_the_inbox_are_skipped(effect_handler):
    batch = envelopes("a", "b", "c")
    deliver(batch[1], effect_handler)

    outcomes = deliver_batch([*batch, batch[0]], effect_handler)  # and one repeated within the batch

    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED, Outcome.DUPLICATE]
    assert sorted(effects()) == [0, 1, 2] and len(effects()) == 3


def test_a_failing_event_is_rolled_back_alone_and_dead_lettered_alone(effect_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2, "BACKOFF_SECONDS": 0.0}
    batch = envelopes("a", "poison", "c")

    outcomes = deliver_batch(batch, effect_handler)

    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert effects() == [0, 2]
    dead_letter = DeadLetter.objects.using("orders").get()
    assert (dead_letter.event_id, dead_letter.attempts) == (batch[1].event_id, 2)
    assert "cannot apply probe 1" in dead_letter.error
    inbox = set(InboxEntry.objects.using("orders").values_list("event_id", flat=True))
    assert inbox == {batch[0].event_id, batch[2].event_id}


def test_an_event_that_fails_once_is_retried_before_the_events_after_it(effect_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2, "BACKOFF_SECONDS": 0.0}

    outcomes = deliver_batch(envelopes("a", "flaky", "c"), effect_handler)

    assert outcomes == [Outcome.APPLIED] * 3
    assert effects() == [0, 1, 2], "the order of one-by-one delivery"
    assert not DeadLetter.objects.using("orders").exists()


def test_a_declared_bulk_form_gets_the_whole_batch(effect_handler):
    calls: list[list[int]] = []

    @handles_batch(write_effect)
    def write_effects(events: list[ProbeHappened]) -> None:
        calls.append([event.probe_id for event in events])
        for event in events:
            write_effect(event)

    outcomes = deliver_batch(envelopes("a", "b", "c"), subscription(NAME))

    assert outcomes == [Outcome.APPLIED] * 3
    assert calls == [[0, 1, 2]] and effects() == [0, 1, 2]


def test_a_bulk_form_that_fails_falls_back_to_one_by_one(effect_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 1}

    @handles_batch(write_effect)
    def write_effects(events: list[ProbeHappened]) -> None:
        for event in events:
            write_effect(event)  # the poison raises: everything it wrote is rolled back

    outcomes = deliver_batch(envelopes("a", "poison", "c"), subscription(NAME))

    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert effects() == [0, 2]


def test_handles_batch_needs_a_subscribed_handler():
    with pytest.raises(TypeError, match="decorate it with @handles first"):
        handles_batch(lambda event: None)(lambda events: None)


def test_dispatch_batch_keeps_the_order_between_handlers(effect_handler):
    seen: list[tuple[str, int]] = []
    other = "orders.handlers.batch_probe_other"
    register(Subscription("orders", other, ProbeHappened, lambda event: seen.append(("other", event.probe_id))))
    try:
        outcomes = dispatch_batch(envelopes("a", "b"), ("orders",))
    finally:
        unregister(other)

    assert outcomes == [[Outcome.APPLIED, Outcome.APPLIED]] * 2
    assert effects() == [0, 1] and seen == [("other", 0), ("other", 1)]


def test_deliver_pending_delivers_what_an_interrupted_run_left_and_reports_progress(effect_handler, monkeypatch):
    transport = get_transport()
    monkeypatch.setattr(transport, "wake", lambda alias: None)  # the run "dies" before delivering
    with transaction.atomic(using="catalog"):
        publish_many([ProbeHappened(probe_id=i) for i in range(5)], wake=False)
    monkeypatch.undo()
    progress: list[tuple[int, int]] = []

    delivered = deliver_pending("catalog", lambda done, total: progress.append((done, total)))

    assert delivered == 5 and effects() == [0, 1, 2, 3, 4]
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)
    assert not OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).exists()
