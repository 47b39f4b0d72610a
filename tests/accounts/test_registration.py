import pytest

from accounts.api.views import REGISTERED
from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create, error_fields

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

URL = "/api/accounts/register/"


def register(**body):
    return client_for().post(URL, body)


def sign_in(email: str, password: str):
    return client_for().post("/api/accounts/token/", {"email": email, "password": password})


def test_registration_creates_customer_who_then_signs_in():
    response = register(email="  Ada@Example.COM ", password=PASSWORD, name=" Ada Lovelace ")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body == {"email": "ada@example.com", "detail": REGISTERED, "sign_in": "/api/accounts/token/"}
    customer = Customer.objects.get(email="ada@example.com")
    assert customer.name == "Ada Lovelace"
    assert customer.is_active
    assert customer.password_hash != PASSWORD and customer.check_password(PASSWORD)
    tokens = sign_in("ada@example.com", PASSWORD)
    assert tokens.status_code == 200
    me = client_for().get("/api/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert me.status_code == 200
    assert me.json()["id"] == str(customer.id)


def test_missing_fields_are_each_named():
    response = register()

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert error_fields(body) == {"email", "password", "name"}
    assert {error["code"] for error in body["errors"]} == {"required"}


def test_malformed_email_is_named():
    response = register(email="not-an-email", password=PASSWORD, name="Ada")

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email"}


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short1!", "password_too_short"),
        ("password123", "password_too_common"),
        ("83749182736451", "password_entirely_numeric"),
        ("ada.lovelace.reader", "password_too_similar"),
    ],
)
def test_password_refused_by_django_validators(password, code):
    response = register(email="ada.lovelace.reader@example.com", password=password, name="Ada")

    assert response.status_code == 400
    body = response.json()
    assert error_fields(body) == {"password"}
    assert code in {error["code"] for error in body["errors"]}
    assert not Customer.objects.exists()


def test_a_taken_email_gets_the_same_answer_as_a_free_one_and_changes_nothing():
    existing = customer_create(email="ada@example.com", name="Ada")
    free = register(email="bea@example.com", password=PASSWORD, name="Bea")  # as long as the taken one

    taken = register(email="ADA@example.com", password="another long passphrase", name="Another Ada")

    assert (taken.status_code, free.status_code) == (202, 202)

    def headers(response) -> dict[str, str]:
        return {name: value for name, value in response.headers.items() if name != "X-Correlation-ID"}

    assert headers(taken) == headers(free)
    assert taken.json() == {**free.json(), "email": "ada@example.com"}
    existing.refresh_from_db()
    assert existing.name == "Ada" and existing.check_password(PASSWORD)
    assert Customer.objects.filter(email="ada@example.com").count() == 1
    # The person who forgot they had an account: their earlier password is the one that works.
    assert sign_in("ada@example.com", "another long passphrase").status_code == 401
    assert sign_in("ada@example.com", PASSWORD).status_code == 200


def test_a_taken_email_with_a_weak_password_names_only_the_password():
    customer_create(email="ada@example.com")

    response = register(email="ada@example.com", password="123", name="Ada")

    assert response.status_code == 400
    assert error_fields(response.json()) == {"password"}


def test_client_cannot_choose_id_activity_or_timestamps():
    chosen_id = "00000000-0000-0000-0000-000000000001"
    response = register(
        email="ada@example.com",
        password=PASSWORD,
        name="Ada",
        id=chosen_id,
        is_active=False,
        created_at="2001-01-01T00:00:00Z",
        password_hash="md5$$forged",
    )

    assert response.status_code == 202
    customer = Customer.objects.get(email="ada@example.com")
    assert str(customer.id) != chosen_id
    assert customer.is_active
    assert customer.created_at.year > 2001
    assert customer.check_password(PASSWORD)
