"""A deactivated or deleted customer's still-unexpired token is refused by every module that has seen the event.

accounts refuses at once (it owns the record). orders and recommendations refuse as soon as
``accounts.CustomerDeactivated``/``CustomerDeleted`` reached their handlers; until then the token
works there: that gap is the documented window (docs/operations.md, "Deactivating a customer").
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.contracts import CustomerDeactivated, CustomerDeleted, CustomerReactivated
from messaging.delivery import Outcome
from messaging.dispatch import dispatch
from orders.models import CustomerAccess as OrdersCustomerAccess
from recommendations.models import CustomerAccess as RecommendationsCustomerAccess
from tests.accounts.factories import client_for, customer_create, outbox
from tests.orders.factories import envelope_of

pytestmark = pytest.mark.django_db(databases=["default", "accounts", "orders", "recommendations"])

CUSTOMER_ENDPOINTS = {
    "accounts": "/api/accounts/me/",
    "orders": "/api/orders/",
    "recommendations": "/api/recommendations/me/",
}
CONSUMERS = ("orders", "recommendations")


def statuses(client) -> dict[str, int]:
    return {module: client.get(url).status_code for module, url in CUSTOMER_ENDPOINTS.items()}


def deliver_outbox(event_type: str) -> list[Outcome]:
    """Hand accounts' recorded events to the consuming modules, as the relay and transport would."""
    return [outcome for message in outbox(event_type) for outcome in dispatch(message.to_envelope(), CONSUMERS)]


def test_deactivation_is_published_and_refused_by_each_module_once_it_has_seen_it():
    customer = customer_create()
    client = client_for(customer)
    assert statuses(client) == {"accounts": 200, "orders": 200, "recommendations": 200}

    assert services.customer_set_active(customer_ids=[customer.id], is_active=False) == 1

    [message] = outbox(CustomerDeactivated.event_type)
    assert (message.event_version, message.payload) == (1, {"customer_id": str(customer.id)})
    # The window: accounts knows at once; the others still accept until the event reaches them.
    assert statuses(client) == {"accounts": 401, "orders": 200, "recommendations": 200}

    assert deliver_outbox(CustomerDeactivated.event_type) == [Outcome.APPLIED, Outcome.APPLIED]

    assert statuses(client) == {"accounts": 401, "orders": 401, "recommendations": 401}
    refused = client.get("/api/orders/")
    assert refused["Content-Type"] == "application/problem+json"
    assert "deactivated or deleted" in refused.json()["detail"]


def test_reactivation_is_published_and_accepted_again():
    customer = customer_create()
    client = client_for(customer)
    services.customer_set_active(customer_ids=[customer.id], is_active=False)
    deliver_outbox(CustomerDeactivated.event_type)

    assert services.customer_set_active(customer_ids=[customer.id], is_active=True) == 1
    deliver_outbox(CustomerReactivated.event_type)

    assert statuses(client) == {"accounts": 200, "orders": 200, "recommendations": 200}


def test_setting_the_same_state_again_publishes_nothing():
    customer = customer_create()

    assert services.customer_set_active(customer_ids=[customer.id], is_active=True) == 0

    assert outbox(CustomerDeactivated.event_type) == outbox(CustomerReactivated.event_type) == []


def test_deletion_is_published_and_refused_everywhere():
    customer = customer_create()
    client = client_for(customer)

    assert services.customer_delete(customer_ids=[customer.id]) == 1
    assert deliver_outbox(CustomerDeleted.event_type) == [Outcome.APPLIED, Outcome.APPLIED]

    assert statuses(client) == {"accounts": 401, "orders": 401, "recommendations": 401}


def test_a_late_reactivation_does_not_undo_a_newer_deactivation():
    customer = customer_create()
    client = client_for(customer)
    now = timezone.now()
    dispatch(envelope_of(CustomerDeactivated(customer_id=customer.id), occurred_at=now), CONSUMERS)

    dispatch(
        envelope_of(CustomerReactivated(customer_id=customer.id), occurred_at=now - timedelta(seconds=1)), CONSUMERS
    )

    assert not OrdersCustomerAccess.objects.get(customer_id=customer.id).active
    assert not RecommendationsCustomerAccess.objects.get(customer_id=customer.id).active
    assert statuses(client)["orders"] == 401


def test_a_redelivered_deactivation_is_skipped():
    customer = customer_create()
    envelope = envelope_of(CustomerDeactivated(customer_id=customer.id))

    assert dispatch(envelope, CONSUMERS) == [Outcome.APPLIED, Outcome.APPLIED]
    assert dispatch(envelope, CONSUMERS) == [Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_the_admin_deactivates_through_the_service(admin_client):
    customer = customer_create()

    response = admin_client.post(
        "/admin/accounts/customer/", {"action": "deactivate", "_selected_action": [str(customer.id)]}
    )

    assert response.status_code == 302
    assert len(outbox(CustomerDeactivated.event_type)) == 1


def test_the_admin_deletes_through_the_service(admin_client):
    customer = customer_create()

    response = admin_client.post(f"/admin/accounts/customer/{customer.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert len(outbox(CustomerDeleted.event_type)) == 1
