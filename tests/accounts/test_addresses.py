import uuid

import pytest

from accounts.models import Address
from tests.accounts.factories import address_create, address_data, client_for, customer_create, error_fields

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

ADDRESSES = "/api/accounts/addresses/"


def detail(address) -> str:
    return f"{ADDRESSES}{address.id}/"


def test_create_list_read_update_delete():
    customer = customer_create()
    client = client_for(customer)

    created = client.post(ADDRESSES, address_data(line2="Flat 3", country="gb"))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["country"] == "GB"
    assert body["line2"] == "Flat 3"
    assert body["is_default"] is True  # the first address is the default

    listed = client.get(ADDRESSES).json()
    assert listed["count"] == 1
    assert [item["id"] for item in listed["results"]] == [body["id"]]
    url = f"{ADDRESSES}{body['id']}/"
    assert client.get(url).json() == body

    patched = client.patch(url, {"city": "Cambridge", "postal_code": "CB2 1TN"})
    assert patched.status_code == 200
    assert (patched.json()["city"], patched.json()["line1"]) == ("Cambridge", "12 Paper Lane")

    replaced = client.put(url, address_data(line1="1 New Street", label="Office"))
    assert replaced.status_code == 200
    assert (replaced.json()["line1"], replaced.json()["line2"]) == ("1 New Street", "")

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert not Address.objects.exists()


def test_missing_and_invalid_fields_are_named():
    client = client_for(customer_create())

    missing = client.post(ADDRESSES, {})
    invalid = client.post(ADDRESSES, address_data(country="Britain"))

    assert missing.status_code == 400
    assert error_fields(missing.json()) == {"recipient", "line1", "city", "postal_code", "country"}
    assert invalid.status_code == 400
    assert error_fields(invalid.json()) == {"country"}


def test_client_cannot_choose_id_or_owner():
    customer, other = customer_create(), customer_create()
    chosen = str(uuid.uuid4())

    response = client_for(customer).post(ADDRESSES, address_data(id=chosen, customer=str(other.id)))

    assert response.status_code == 201
    address = Address.objects.get()
    assert str(address.id) != chosen
    assert address.customer_id == customer.id


def test_one_default_address_at_a_time():
    customer = customer_create()
    client = client_for(customer)
    home = address_create(customer=customer, label="Home")

    office = client.post(ADDRESSES, address_data(label="Office", is_default=True)).json()
    home.refresh_from_db()
    assert office["is_default"] and not home.is_default

    client.patch(detail(home), {"is_default": True})
    assert Address.objects.get(id=office["id"]).is_default is False
    assert client.get(ADDRESSES).json()["results"][0]["id"] == str(home.id)

    client.delete(detail(home))
    assert Address.objects.get(id=office["id"]).is_default is True


def test_addresses_need_a_customer_token():
    address = address_create(customer=customer_create())

    assert client_for().get(ADDRESSES).status_code == 401
    assert client_for().get(detail(address)).status_code == 401
    assert client_for().post(ADDRESSES, address_data()).status_code == 401


def test_list_shows_only_own_addresses():
    customer, other = customer_create(), customer_create()
    mine = address_create(customer=customer)
    address_create(customer=other)

    results = client_for(customer).get(ADDRESSES).json()["results"]

    assert [item["id"] for item in results] == [str(mine.id)]


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_another_customers_address_is_not_found(method):
    owner, intruder = customer_create(), customer_create()
    address = address_create(customer=owner, city="Oxford")

    call = getattr(client_for(intruder), method)
    response = (
        call(detail(address), address_data(city="Stolen")) if method in ("patch", "put") else call(detail(address))
    )

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    address.refresh_from_db()
    assert address.city == "Oxford"
    assert client_for(owner).get(detail(address)).status_code == 200


def test_unknown_address_is_not_found():
    client = client_for(customer_create())

    assert client.get(f"{ADDRESSES}{uuid.uuid4()}/").status_code == 404
    assert client.get(f"{ADDRESSES}not-a-uuid/").status_code == 404
