import pytest

from accounts.contracts import CustomerUpdated
from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create, error_fields, outbox

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

ME = "/api/accounts/me/"
PASSWORD_CHANGE = "/api/accounts/me/password/"
NEW_PASSWORD = "a brand new reading lamp"


def test_me_needs_a_customer_token():
    response = client_for().get(ME)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_me_shows_the_signed_in_customer():
    customer = customer_create(email="ada@example.com", name="Ada")
    customer_create(email="someone.else@example.com")

    response = client_for(customer).get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "id": str(customer.id),
        "email": "ada@example.com",
        "name": "Ada",
        "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
    }


def test_me_refuses_a_token_whose_customer_is_gone():
    customer = customer_create()
    client = client_for(customer)
    Customer.objects.filter(id=customer.id).delete()

    assert client.get(ME).status_code == 401


def test_patch_changes_name_and_email_and_publishes_customer_updated():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = client_for(customer).patch(ME, {"name": "Ada King", "email": "ADA.KING@example.com"})

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Ada King"
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("ada.king@example.com", "Ada King")
    [message] = outbox(CustomerUpdated.event_type)
    assert message.event_version == 1
    assert message.aggregate_id == str(customer.id)
    assert message.payload == {"customer_id": str(customer.id), "email": "ada.king@example.com", "name": "Ada King"}


def test_patch_without_change_publishes_nothing():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = client_for(customer).patch(ME, {"name": "Ada", "email": "Ada@example.com"})

    assert response.status_code == 200
    assert outbox(CustomerUpdated.event_type) == []


def test_patch_to_another_customers_email_is_refused():
    customer_create(email="taken@example.com")
    customer = customer_create(email="ada@example.com")

    response = client_for(customer).patch(ME, {"email": "Taken@example.com"})

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email"}
    customer.refresh_from_db()
    assert customer.email == "ada@example.com"
    assert outbox(CustomerUpdated.event_type) == []


def test_patch_cannot_set_id_activity_timestamps_or_password():
    customer = customer_create(email="ada@example.com", name="Ada")
    before = Customer.objects.get(id=customer.id)

    response = client_for(customer).patch(
        ME,
        {
            "id": "00000000-0000-0000-0000-000000000001",
            "is_active": False,
            "created_at": "2001-01-01T00:00:00Z",
            "password_hash": "md5$$forged",
            "name": "Ada King",
        },
    )

    assert response.status_code == 200
    after = Customer.objects.get(id=customer.id)
    assert after.is_active
    assert after.created_at == before.created_at
    assert after.password_hash == before.password_hash
    assert after.name == "Ada King"
    assert Customer.objects.count() == 1


def test_patch_validates_fields():
    customer = customer_create()

    response = client_for(customer).patch(ME, {"email": "nope", "name": ""})

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email", "name"}


def test_password_change_needs_the_current_password():
    customer = customer_create()

    response = client_for(customer).post(PASSWORD_CHANGE, {"old_password": "guess", "new_password": NEW_PASSWORD})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "old_password", "message": "The current password is not correct.", "code": "password_incorrect"}
    ]
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_change_validates_the_new_password():
    customer = customer_create()

    response = client_for(customer).post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": "12345"})

    assert response.status_code == 400
    assert error_fields(response.json()) == {"new_password"}
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_change_replaces_the_password_and_ends_older_sessions():
    customer = customer_create(email="ada@example.com")
    client = client_for()
    old_refresh = client.post("/api/accounts/token/", {"email": "ada@example.com", "password": PASSWORD}).json()[
        "refresh"
    ]

    response = client_for(customer).post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert response.status_code == 200, response.content
    new_tokens = response.json()
    sign_in_old = client.post("/api/accounts/token/", {"email": "ada@example.com", "password": PASSWORD})
    sign_in_new = client.post("/api/accounts/token/", {"email": "ada@example.com", "password": NEW_PASSWORD})
    assert (sign_in_old.status_code, sign_in_new.status_code) == (401, 200)
    assert client.post("/api/accounts/token/refresh/", {"refresh": old_refresh}).status_code == 401
    assert client.post("/api/accounts/token/refresh/", {"refresh": new_tokens["refresh"]}).status_code == 200


def test_password_change_needs_a_token():
    response = client_for().post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert response.status_code == 401
