import pytest

from accounts.contracts import CustomerRegistered, CustomerUpdated
from accounts.models import Customer
from tests.accounts.factories import PASSWORD, address_create, customer_create, outbox

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

CUSTOMERS = "/admin/accounts/customer/"
NO_ADDRESSES = {
    "addresses-TOTAL_FORMS": "0",
    "addresses-INITIAL_FORMS": "0",
    "addresses-MIN_NUM_FORMS": "0",
    "addresses-MAX_NUM_FORMS": "1000",
}


def test_customer_list_searches_and_filters(admin_client):
    customer_create(email="ada@example.com", name="Ada")
    customer_create(email="grace@example.com", name="Grace", is_active=False)

    found = admin_client.get(CUSTOMERS, {"q": "ada"})
    active = admin_client.get(CUSTOMERS, {"is_active__exact": "0"})

    assert found.status_code == 200
    assert b"ada@example.com" in found.content and b"grace@example.com" not in found.content
    assert b"grace@example.com" in active.content and b"ada@example.com" not in active.content


def test_change_form_never_shows_the_hash_as_an_editable_field(admin_client):
    customer = customer_create(email="ada@example.com")
    address_create(customer=customer, city="Oxford")

    response = admin_client.get(f"{CUSTOMERS}{customer.id}/change/")

    assert response.status_code == 200
    assert customer.password_hash.encode() not in response.content
    assert b'name="password_hash"' not in response.content
    assert b'name="new_password"' in response.content
    assert b"Oxford" in response.content  # the address inline


def test_adding_a_customer_hashes_the_password_and_publishes(admin_client):
    response = admin_client.post(
        f"{CUSTOMERS}add/",
        {
            "email": "Ada@Example.com",
            "name": "Ada",
            "is_active": "on",
            "new_password": PASSWORD,
            "new_password_again": PASSWORD,
            **NO_ADDRESSES,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get()
    assert customer.email == "ada@example.com"
    assert customer.check_password(PASSWORD)
    [message] = outbox(CustomerRegistered.event_type)
    assert message.aggregate_id == str(customer.id)


def test_adding_a_customer_needs_a_valid_password(admin_client):
    response = admin_client.post(
        f"{CUSTOMERS}add/", {"email": "ada@example.com", "name": "Ada", "is_active": "on", **NO_ADDRESSES}
    )

    assert response.status_code == 200
    assert "new_password" in response.context["adminform"].form.errors
    assert not Customer.objects.exists()


def test_editing_the_name_keeps_the_password_and_publishes(admin_client):
    customer = customer_create(email="ada@example.com", name="Ada")
    password_hash = customer.password_hash

    response = admin_client.post(
        f"{CUSTOMERS}{customer.id}/change/",
        {"email": "ada@example.com", "name": "Ada King", "is_active": "on", **NO_ADDRESSES},
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Ada King"
    assert customer.password_hash == password_hash
    assert [m.payload["name"] for m in outbox(CustomerUpdated.event_type)] == ["Ada King"]


def test_deactivate_action(admin_client):
    ada = customer_create()
    grace = customer_create()

    admin_client.post(CUSTOMERS, {"action": "deactivate", "_selected_action": [str(ada.id)]})

    assert Customer.objects.get(id=ada.id).is_active is False
    assert Customer.objects.get(id=grace.id).is_active is True


def test_address_admin_lists_and_searches(admin_client):
    customer = customer_create(email="ada@example.com")
    address_create(customer=customer, city="Oxford")

    response = admin_client.get("/admin/accounts/address/", {"q": "ada@example.com", "country": "GB"})

    assert response.status_code == 200
    assert b"Oxford" in response.content
