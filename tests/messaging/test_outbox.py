import pytest
from django.db import transaction

from messaging import InvalidEvent, PublishOutsideTransaction, publish
from messaging.models import OutboxMessage
from tests.messaging.probes import ProbeHappened

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
