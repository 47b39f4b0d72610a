import jwt
import pytest
from django.conf import settings

from accounts.models import Customer
from tests.accounts.factories import PASSWORD, client_for, customer_create

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

SIGN_IN = "/api/accounts/token/"
REFRESH = "/api/accounts/token/refresh/"


def decode(token: str) -> dict:
    """Verify the way every other module does: RS256 with the public key alone."""
    return jwt.decode(
        token,
        settings.SIMPLE_JWT["VERIFYING_KEY"],
        algorithms=["RS256"],
        issuer=settings.SIMPLE_JWT["ISSUER"],
        audience=settings.SIMPLE_JWT["AUDIENCE"],
    )


def sign_in(email: str, password: str):
    return client_for().post(SIGN_IN, {"email": email, "password": password})


def test_sign_in_returns_rs256_tokens_naming_the_customer():
    customer = customer_create(email="ada@example.com", name="Ada")

    response = sign_in("Ada@Example.com", PASSWORD)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    assert jwt.get_unverified_header(body["access"])["alg"] == "RS256"
    access = decode(body["access"])
    assert access["sub"] == str(customer.id)
    assert access["role"] == "customer"
    assert access["token_type"] == "access"
    assert access["iss"] == "quire-accounts"
    assert access["aud"] == "quire"
    assert (access["email"], access["name"]) == ("ada@example.com", "Ada")
    refresh = decode(body["refresh"])
    assert refresh["token_type"] == "refresh"
    assert refresh["sub"] == str(customer.id)
    assert refresh["exp"] > access["exp"]


@pytest.mark.parametrize(
    ("email", "password"),
    [("ada@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_bad_credentials_are_401_problem_details(email, password):
    customer_create(email="ada@example.com")

    response = sign_in(email, password)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "bad_credentials"
    assert "access" not in body


def test_inactive_customer_cannot_sign_in():
    customer_create(email="ada@example.com", is_active=False)

    assert sign_in("ada@example.com", PASSWORD).status_code == 401


def test_sign_in_without_fields_names_them():
    response = client_for().post(SIGN_IN, {})

    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {"email", "password"}


def test_stale_authorization_header_does_not_block_sign_in():
    customer_create(email="ada@example.com")
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")

    assert client.post(SIGN_IN, {"email": "ada@example.com", "password": PASSWORD}).status_code == 200


def test_refresh_returns_a_new_access_token_with_current_profile():
    customer = customer_create(email="ada@example.com", name="Ada")
    refresh = sign_in("ada@example.com", PASSWORD).json()["refresh"]
    Customer.objects.filter(id=customer.id).update(name="Ada King")

    response = client_for().post(REFRESH, {"refresh": refresh})

    assert response.status_code == 200, response.content
    access = decode(response.json()["access"])
    assert access["sub"] == str(customer.id)
    assert access["role"] == "customer"
    assert access["name"] == "Ada King"
    me = client_for().get("/api/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.status_code == 200


def test_refresh_refuses_an_access_token():
    customer_create(email="ada@example.com")
    access = sign_in("ada@example.com", PASSWORD).json()["access"]

    response = client_for().post(REFRESH, {"refresh": access})

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_refresh_refuses_garbage_and_missing_token():
    assert client_for().post(REFRESH, {"refresh": "not.a.token"}).status_code == 401
    missing = client_for().post(REFRESH, {})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "refresh"


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_refresh_refused_once_customer_is_deactivated_or_gone(change):
    customer = customer_create(email="ada@example.com")
    refresh = sign_in("ada@example.com", PASSWORD).json()["refresh"]
    customers = Customer.objects.filter(id=customer.id)
    if change == "deactivate":
        customers.update(is_active=False)
    else:
        customers.delete()

    assert client_for().post(REFRESH, {"refresh": refresh}).status_code == 401


def test_refresh_token_is_not_accepted_as_bearer():
    customer_create(email="ada@example.com")
    refresh = sign_in("ada@example.com", PASSWORD).json()["refresh"]

    response = client_for().get("/api/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {refresh}")

    assert response.status_code == 401
