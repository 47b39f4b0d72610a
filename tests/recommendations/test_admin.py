"""recommendations in the Django admin: books shown by title from its own copy, customers as bare ids."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.recommendations.factories import book_published, handle, order_confirmed

pytestmark = pytest.mark.django_db(databases=["default", "recommendations"])


@pytest.fixture
def staff_client() -> Client:
    staff = get_user_model().objects.create_superuser(username="boss", password=None, email="b@example.com")
    client = Client()
    client.force_login(staff)
    return client


def test_purchases_and_journal_entries_show_their_book_by_title(staff_client):
    customer = uuid.uuid4()
    handle(book_published(41, "The Dispossessed"), order_confirmed(customer, 41, 42))  # 42: no copy of it yet

    purchases = staff_client.get("/admin/recommendations/purchase/").content.decode()
    journal = staff_client.get("/admin/recommendations/modelchange/").content.decode()
    by_title = staff_client.get("/admin/recommendations/purchase/", {"o": "4"})

    assert "The Dispossessed [41]" in purchases and "book 42" in purchases
    assert "The Dispossessed [41]" in journal
    assert by_title.status_code == 200  # the title column sorts


def test_customers_stay_bare_ids_by_choice(staff_client):
    customer = uuid.uuid4()
    handle(book_published(43, "Lathe of Heaven"), order_confirmed(customer, 43))

    purchases = staff_client.get("/admin/recommendations/purchase/").content.decode()

    # recommendations keeps no customer names or emails (docs/recommendations.md): the id is all it has.
    assert str(customer) in purchases
