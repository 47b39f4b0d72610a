import pytest
from django.db import transaction

from messaging import InvalidEvent, PublishOutsideTransaction, publish
from messaging.correlation import correlation
from messaging.models import OutboxMessage
from tests.messaging.probes import ProbeHappened
from tests.support.databases import on_each_database, use_database

pytestmark = pytest.mark.django_db(databases=["catalog", "orders"])


def test_publish_writes_an_outbox_row_on_the_producers_database():
    with transaction.atomic(using="catalog"):
        envelope = publish(ProbeHappened(probe_id=7, note="hello"))

    row = OutboxMessage.objects.using("catalog").get()
    assert row.event_id == envelope.event_id
    assert (row.event_type, row.event_version, row.aggregate_id, row.producer) == (
        "catalog.ProbeHappened",
        1,
        "7",
        "catalog",
    )
    assert row.payload == {"probe_id": 7, "note": "hello"}
    assert not OutboxMessage.objects.using("orders").exists()


@on_each_database
def test_one_event_is_stored_exactly_as_the_orms_bulk_insert_stores_it(database, monkeypatch):
    """publish() of one event replays a compiled INSERT; the row must be the one bulk_create writes."""
    use_database(database, "catalog")
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    monkeypatch.setattr("messaging.publishing.tracing.current_traceparent", lambda: traceparent)
    outbox = OutboxMessage.objects.using("catalog")
    with transaction.atomic(using="catalog"), correlation("corr-1"):
        envelope = publish(ProbeHappened(probe_id=7, note='h\u00e9llo \u2028 "quoted" \\ \U0001f4da'))
    replayed = outbox.values().get()
    outbox.all().delete()
    with transaction.atomic(using="catalog"):
        outbox.bulk_create([OutboxMessage.from_envelope(envelope)])
    stored_by_the_orm = outbox.values().get()

    assert replayed.pop("id") != stored_by_the_orm.pop("id")
    if database == "postgresql":  # the database's default: the test's one transaction's id, for both
        assert replayed["transaction_id"] is not None
    assert replayed == stored_by_the_orm
    assert replayed["correlation_id"] == "corr-1" and replayed["payload"]["note"].endswith("\U0001f4da")
    assert replayed["traceparent"] == traceparent and replayed["published_at"] is None


def test_a_rollback_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic(using="catalog"):
        publish(ProbeHappened(probe_id=1))
        raise RuntimeError("the change fails after the event was recorded")

    assert not OutboxMessage.objects.using("catalog").exists()


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(PublishOutsideTransaction, match=r"transaction.atomic\(using='catalog'\)"):
        publish(ProbeHappened(probe_id=1))


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_publish_inside_another_modules_transaction_is_refused():
    with pytest.raises(PublishOutsideTransaction), transaction.atomic(using="orders"):
        publish(ProbeHappened(probe_id=1))


def test_an_invalid_payload_is_refused_when_built():
    with pytest.raises(ValueError, match="probe_id"):
        ProbeHappened(probe_id="not a number")


def test_an_invalid_payload_is_refused_when_consumed():
    with pytest.raises(InvalidEvent, match=r"catalog.ProbeHappened v1 payload is invalid: probe_id"):
        ProbeHappened.from_payload({"probe_id": "x"})
    with pytest.raises(InvalidEvent, match="unexpected"):
        ProbeHappened.from_payload({"probe_id": 1, "unexpected": True})


def test_an_event_type_must_name_its_module():
    with pytest.raises(TypeError, match=r"<module>\.<Event>"):

        class Nameless(ProbeHappened):
            event_type = "NoModule"
