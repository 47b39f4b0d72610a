"""In-process transport: delivery after commit, redelivery after a crash, inbox, dead letters, redrive."""

import pytest
from django.db import transaction

from messaging import publish
from messaging.delivery import Outcome, backoff_seconds, dead_letter_redrive, deliver
from messaging.models import DeadLetter, InboxEntry, OutboxMessage
from messaging.registry import subscription
from messaging.transports import get_transport
from tests.messaging.probes import PROBE_HANDLER_NAME, ProbeHappened, publish_probe

pytestmark = pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)


def test_an_event_is_delivered_after_commit_and_marked_published(probe_handler):
    with transaction.atomic(using="catalog"):
        publish(ProbeHappened(probe_id=1, note="first"))
        assert probe_handler.received == [], "nothing may be delivered before commit"

    assert [(e.probe_id, e.note) for e in probe_handler.received] == [(1, "first")]
    assert probe_handler.received[0].envelope.producer == "catalog"
    assert OutboxMessage.objects.using("catalog").get().published_at is not None
    inbox = InboxEntry.objects.using("orders").get()
    assert (inbox.handler, inbox.event_type) == (PROBE_HANDLER_NAME, "catalog.ProbeHappened")


def test_a_rolled_back_event_is_never_delivered(probe_handler):
    with pytest.raises(RuntimeError), transaction.atomic(using="catalog"):
        publish(ProbeHappened(probe_id=1))
        raise RuntimeError("rollback")

    get_transport().drain({"catalog"})
    assert probe_handler.received == []


def test_events_are_delivered_in_commit_order(probe_handler):
    for probe_id in range(5):
        publish_probe(probe_id)

    assert [e.probe_id for e in probe_handler.received] == [0, 1, 2, 3, 4]


@pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders", "recommendations"], transaction=True)
def test_an_event_left_undelivered_by_a_crash_is_delivered_on_the_next_start(probe_handler, monkeypatch):
    transport = get_transport()
    # The process "dies" between commit and delivery: the wake-up never runs.
    monkeypatch.setattr(transport, "wake", lambda alias: None)
    publish_probe(42)
    assert probe_handler.received == []
    assert OutboxMessage.objects.using("catalog").get().published_at is None
    monkeypatch.undo()

    transport.on_process_start()

    assert [e.probe_id for e in probe_handler.received] == [42]
    assert OutboxMessage.objects.using("catalog").get().published_at is not None


def test_a_crash_after_some_handlers_ran_redelivers_without_applying_twice(probe_handler):
    publish_probe(3)
    row = OutboxMessage.objects.using("catalog").get()
    # The process died after the handler committed but before the row was marked published.
    OutboxMessage.objects.using("catalog").filter(pk=row.pk).update(published_at=None)

    get_transport().drain({"catalog"})

    assert [e.probe_id for e in probe_handler.received] == [3]
    assert InboxEntry.objects.using("orders").count() == 1
    assert OutboxMessage.objects.using("catalog").get().published_at is not None


def test_the_same_event_delivered_twice_takes_effect_once(probe_handler):
    publish_probe(9)
    envelope = OutboxMessage.objects.using("catalog").get().to_envelope()

    outcome = deliver(envelope, subscription(PROBE_HANDLER_NAME))

    assert outcome is Outcome.DUPLICATE
    assert len(probe_handler.received) == 1


def test_a_failing_handler_is_retried_then_succeeds(probe_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3}
    probe_handler.failures = 2

    publish_probe(5)

    assert probe_handler.calls == 3
    assert [e.probe_id for e in probe_handler.received] == [5]
    assert not DeadLetter.objects.using("orders").exists()


def test_a_handler_that_keeps_failing_is_parked_and_delivery_goes_on(probe_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3}
    probe_handler.failures = 3

    publish_probe(1, note="poison")
    publish_probe(2, note="healthy")

    assert probe_handler.calls == 4
    assert [e.probe_id for e in probe_handler.received] == [2]
    dead_letter = DeadLetter.objects.using("orders").get()
    assert dead_letter.status == DeadLetter.Status.PARKED
    assert dead_letter.attempts == 3
    assert "probe failure 3" in dead_letter.error
    assert dead_letter.envelope["payload"] == {"probe_id": 1, "note": "poison"}
    assert not InboxEntry.objects.using("orders").filter(event_id=dead_letter.event_id).exists()
    assert OutboxMessage.objects.using("catalog").filter(published_at__isnull=True).count() == 0


def test_a_dead_letter_can_be_redriven(probe_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2}
    probe_handler.failures = 2
    publish_probe(11)
    dead_letter = DeadLetter.objects.using("orders").get()

    outcome = dead_letter_redrive(dead_letter)

    assert outcome is Outcome.APPLIED
    assert [e.probe_id for e in probe_handler.received] == [11]
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.REDRIVEN
    assert dead_letter.redriven_at is not None
    assert InboxEntry.objects.using("orders").filter(event_id=dead_letter.event_id).exists()


def test_a_redrive_that_fails_again_keeps_the_dead_letter_parked(probe_handler, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 1}
    probe_handler.failures = 2
    publish_probe(12)
    dead_letter = DeadLetter.objects.using("orders").get()

    assert dead_letter_redrive(dead_letter) is Outcome.FAILED

    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.PARKED
    assert dead_letter.attempts == 2
    assert "probe failure 2" in dead_letter.error


def test_a_payload_that_breaks_its_contract_is_parked_without_retrying(probe_handler):
    with transaction.atomic(using="catalog"):
        publish(ProbeHappened(probe_id=1))
        OutboxMessage.objects.using("catalog").update(payload={"probe_id": "broken"})

    assert probe_handler.calls == 0
    dead_letter = DeadLetter.objects.using("orders").get()
    assert dead_letter.attempts == 1
    assert "payload is invalid: probe_id" in dead_letter.error


def test_backoff_grows_exponentially_up_to_a_ceiling(settings):
    settings.MESSAGING = {**settings.MESSAGING, "BACKOFF_SECONDS": 0.5, "BACKOFF_MAX_SECONDS": 3.0}

    assert [backoff_seconds(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
