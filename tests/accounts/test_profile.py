import pytest

from accounts.api.views import EMAIL_CHANGE_RECEIVED
from accounts.contracts import CustomerUpdated
from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create, error_fields, outbox

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

ME = "/api/accounts/me/"
EMAIL_CHANGE = "/api/accounts/me/email/"
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


def test_patch_changes_the_name_and_publishes_customer_updated():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = client_for(customer).patch(ME, {"name": " Ada King "})

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Ada King"
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("ada@example.com", "Ada King")
    [message] = outbox(CustomerUpdated.event_type)
    assert message.event_version == 1
    assert message.aggregate_id == str(customer.id)
    assert message.payload == {"customer_id": str(customer.id), "email": "ada@example.com", "name": "Ada King"}


def test_patch_without_change_publishes_nothing():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = client_for(customer).patch(ME, {"name": "Ada"})

    assert response.status_code == 200
    assert outbox(CustomerUpdated.event_type) == []


def test_patch_does_not_change_the_email_and_says_where_it_is_changed():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = client_for(customer).patch(ME, {"email": "ada.king@example.com", "name": "Ada King"})

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email"}
    assert EMAIL_CHANGE in response.json()["errors"][0]["message"]
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("ada@example.com", "Ada")
    assert outbox(CustomerUpdated.event_type) == []


# --- the email: changed with the password, the same answer whether it was free or taken ------------


def change_email(customer, email: str, password: str | None = PASSWORD, **extra):
    body = {"email": email} if password is None else {"email": email, "password": password}
    return client_for(customer).post(EMAIL_CHANGE, body, **extra)


@pytest.mark.parametrize("password", [None, "not my password"], ids=["missing", "wrong"])
def test_an_email_change_needs_the_current_password(password):
    customer = customer_create(email="ada@example.com")

    response = change_email(customer, "ada.king@example.com", password)

    assert response.status_code == 400
    assert error_fields(response.json()) == {"password"}
    customer.refresh_from_db()
    assert customer.email == "ada@example.com"
    assert outbox(CustomerUpdated.event_type) == []


def test_an_email_change_to_a_free_email_takes_effect_and_publishes_customer_updated():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = change_email(customer, " ADA.King@example.com")

    assert response.status_code == 202, response.content
    assert response.json() == {"email": "ada.king@example.com", "detail": EMAIL_CHANGE_RECEIVED}
    customer.refresh_from_db()
    assert customer.email == "ada.king@example.com"
    [message] = outbox(CustomerUpdated.event_type)
    assert message.payload == {"customer_id": str(customer.id), "email": "ada.king@example.com", "name": "Ada"}
    assert (
        client_for().post("/api/accounts/token/", {"email": "ada.king@example.com", "password": PASSWORD}).status_code
        == 200
    )


def test_an_email_change_answers_alike_whether_the_email_is_free_or_taken():
    customer_create(email="taken@example.com")
    ada, bob = customer_create(email="ada@example.com"), customer_create(email="bob@example.com")

    taken = change_email(ada, "Taken@example.com")
    free = change_email(bob, "fresh@example.com")  # as long as the taken one: the same Content-Length

    def answer(response):
        headers = {name: value for name, value in response.items() if name != "X-Correlation-ID"}
        return response.status_code, headers, {**response.json(), "email": None}

    assert answer(taken) == answer(free)
    assert taken.status_code == 202
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"  # nothing changed for the taken one
    assert [m.aggregate_id for m in outbox(CustomerUpdated.event_type)] == [str(bob.id)]


def test_an_email_change_is_rate_limited_per_customer(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "email_change": "2/hour"}
    customer = customer_create(email="ada@example.com")
    for number in range(2):
        assert change_email(customer, f"ada{number}@example.com", "wrong").status_code == 400
    response = change_email(customer, "ada9@example.com", REMOTE_ADDR="10.9.9.9")  # another device too
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    customer.refresh_from_db()
    assert customer.email == "ada@example.com"


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

    response = client_for(customer).patch(ME, {"name": ""})

    assert response.status_code == 400
    assert error_fields(response.json()) == {"name"}


def test_an_email_change_validates_the_email():
    response = change_email(customer_create(), "nope")

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email"}


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
