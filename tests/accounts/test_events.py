import pytest
from django.db import transaction

from accounts import services
from accounts.contracts import CustomerRegistered
from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create, outbox

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])


def test_registration_writes_customer_registered_to_the_outbox():
    response = client_for().post(
        "/api/accounts/register/", {"email": "Ada@example.com", "password": PASSWORD, "name": "Ada"}
    )

    assert response.status_code == 202
    customer_id = str(Customer.objects.get(email="ada@example.com").id)
    [message] = outbox(CustomerRegistered.event_type)
    assert message.event_version == 1
    assert message.producer == "accounts"
    assert message.aggregate_id == customer_id
    assert message.payload == {"customer_id": customer_id, "email": "ada@example.com", "name": "Ada"}
    assert message.published_at is None  # delivered after commit; this test's transaction never commits
    assert str(CustomerRegistered.from_payload(message.payload).customer_id) == customer_id


def test_a_rolled_back_registration_leaves_no_event_and_no_customer():
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic(using="accounts"):
        services.customer_register(email="ada@example.com", password=PASSWORD, name="Ada")
        assert len(outbox(CustomerRegistered.event_type)) == 1
        raise Abort

    assert outbox(CustomerRegistered.event_type) == []
    assert not Customer.objects.exists()


def test_a_registration_with_a_taken_email_publishes_nothing():
    customer_create(email="ada@example.com")

    response = client_for().post(
        "/api/accounts/register/", {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    )

    assert response.status_code == 202  # the same answer as for a free email: no enumeration
    assert outbox(CustomerRegistered.event_type) == []
