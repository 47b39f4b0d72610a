import pytest

from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create, error_fields

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

URL = "/api/accounts/register/"


def register(**body):
    return client_for().post(URL, body)


def test_registration_creates_customer_and_signs_in():
    response = register(email="  Ada@Example.COM ", password=PASSWORD, name=" Ada Lovelace ")

    assert response.status_code == 201, response.content
    body = response.json()
    customer = Customer.objects.get(id=body["customer"]["id"])
    assert customer.email == "ada@example.com"
    assert customer.name == "Ada Lovelace"
    assert customer.is_active
    assert customer.password_hash != PASSWORD and customer.check_password(PASSWORD)
    assert body["customer"]["email"] == "ada@example.com"
    assert "password" not in body["customer"] and "password_hash" not in body["customer"]
    assert set(body["tokens"]) == {"access", "refresh", "token_type", "expires_in"}
    me = client_for().get("/api/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {body['tokens']['access']}")
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


def test_duplicate_email_in_any_letter_case_is_refused():
    customer_create(email="ada@example.com")

    response = register(email="ADA@example.com", password=PASSWORD, name="Another Ada")

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [
        {"field": "email", "message": "A customer with this email already exists.", "code": "unique"}
    ]
    assert Customer.objects.count() == 1


def test_duplicate_email_and_weak_password_are_reported_together():
    customer_create(email="ada@example.com")

    response = register(email="ada@example.com", password="123", name="Ada")

    assert response.status_code == 400
    assert error_fields(response.json()) == {"email", "password"}


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

    assert response.status_code == 201
    customer = Customer.objects.get(email="ada@example.com")
    assert str(customer.id) != chosen_id
    assert customer.is_active
    assert customer.created_at.year > 2001
    assert customer.check_password(PASSWORD)
