"""orders keeps a copy of accounts' customers (name, email) from accounts' events, for its admin."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.contracts import CustomerDeactivated, CustomerRegistered, CustomerUpdated
from accounts.models import Customer as AccountsCustomer
from messaging.delivery import Outcome
from orders.models import Customer, CustomerAccess
from tests.orders.factories import deliver, place_order, product


def registered(customer_id: uuid.UUID, **changes) -> CustomerRegistered:
    return CustomerRegistered(**{"customer_id": customer_id, "email": "ada@example.com", "name": "Ada", **changes})


@pytest.mark.django_db(databases=["orders"])
def test_a_registered_customer_is_copied_and_an_update_renames_it():
    customer_id = uuid.uuid4()
    start = timezone.now()

    assert deliver(registered(customer_id), occurred_at=start) == [Outcome.APPLIED]
    deliver(
        CustomerUpdated(customer_id=customer_id, email="ada@lovelace.example", name="Ada Lovelace"),
        occurred_at=start + timedelta(seconds=1),
    )

    copy = Customer.objects.get(customer_id=customer_id)
    assert (copy.name, copy.email) == ("Ada Lovelace", "ada@lovelace.example")


@pytest.mark.django_db(databases=["orders"])
def test_a_stale_update_delivered_late_changes_nothing():
    customer_id = uuid.uuid4()
    start = timezone.now()
    deliver(CustomerUpdated(customer_id=customer_id, email="new@example.com", name="New"), occurred_at=start)

    deliver(registered(customer_id, email="old@example.com", name="Old"), occurred_at=start - timedelta(seconds=5))

    copy = Customer.objects.get(customer_id=customer_id)
    assert (copy.name, copy.email) == ("New", "new@example.com")


@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_the_orders_admin_shows_the_customer_registered_through_accounts_by_name_and_email():
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    response = APIClient().post(
        "/api/accounts/register/",
        {"email": email, "password": "a-long-passphrase-for-tests", "name": "Grace Hopper"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    customer_id = AccountsCustomer.objects.get(email=email).id
    # The in-process transport delivered accounts.CustomerRegistered to orders after the commit.
    assert Customer.objects.get(customer_id=customer_id).name == "Grace Hopper"
    order = place_order(customer_id, (product(title="Middlemarch"), 1))
    place_order(uuid.uuid4(), (product(), 1))  # a customer orders has no copy of yet
    staff = get_user_model().objects.create_superuser(username="boss", password=None, email="b@example.com")
    client = Client()
    client.force_login(staff)

    listing = client.get("/admin/orders/order/").content.decode()
    by_email = client.get("/admin/orders/order/", {"q": email})
    by_name = client.get("/admin/orders/order/", {"q": "hopper"})
    page = client.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    carts = client.get("/admin/orders/cart/")

    assert "Grace Hopper" in listing and email in listing
    assert list(by_email.context["cl"].result_list) == [order]
    assert list(by_name.context["cl"].result_list) == [order]
    assert "Grace Hopper" in page and email in page
    assert carts.status_code == 200
    assert client.get("/admin/orders/customer/", {"q": "grace"}).context["cl"].result_count == 1


@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_customers_registered_before_orders_consumed_accounts_events_are_copied_by_a_republish():
    # As if registered before orders consumed accounts' events: rows with no event at all.
    earlier = [
        AccountsCustomer.objects.create(email=f"early-{n}-{uuid.uuid4().hex[:6]}@example.com", name=f"Early {n}")
        for n in range(3)
    ]
    assert not Customer.objects.filter(customer_id__in=[c.id for c in earlier]).exists()

    call_command("accounts_republish_customers", "--batch-size", "2", stdout=io.StringIO(), stderr=io.StringIO())

    copies = {c.customer_id: c.name for c in Customer.objects.filter(customer_id__in=[c.id for c in earlier])}
    assert copies == {c.id: c.name for c in earlier}


@pytest.mark.django_db(databases=["default", "orders"])
def test_the_customer_access_admin_shows_whose_tokens_are_refused_by_name_and_email():
    named, unknown = uuid.uuid4(), uuid.uuid4()
    deliver(registered(named, name="Ada Lovelace", email="ada@lovelace.example"))
    deliver(CustomerDeactivated(customer_id=named))
    deliver(CustomerDeactivated(customer_id=unknown))  # a customer orders has no copy of yet
    assert set(CustomerAccess.objects.values_list("customer_id", flat=True)) == {named, unknown}
    staff = get_user_model().objects.create_superuser(username="boss", password=None, email="b@example.com")
    client = Client()
    client.force_login(staff)

    listing = client.get("/admin/orders/customeraccess/").content.decode()
    by_name = client.get("/admin/orders/customeraccess/", {"q": "lovelace"}).context["cl"].result_list
    by_id = client.get("/admin/orders/customeraccess/", {"q": str(unknown)}).context["cl"].result_list

    assert "Ada Lovelace" in listing and "ada@lovelace.example" in listing and str(unknown) in listing
    assert [access.customer_id for access in by_name] == [named]
    assert [access.customer_id for access in by_id] == [unknown]
