"""Customer JWTs: accounts signs with the private key; every module verifies with the public key alone.

Forged tokens are crafted by hand with PyJWT (or raw HMAC where PyJWT rightly refuses to help).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

import jwt
import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Customer
from accounts.tokens import access_token_for
from config.keys import generate_key_pair
from web.auth import IsCustomer, customer_id_of

BASE_DIR = settings.BASE_DIR
WHOAMI = "/whoami/"


class WhoAmIView(APIView):
    """Stands in for any module's customer endpoint: nothing but web.auth and the public key."""

    permission_classes = [IsCustomer]

    def get(self, request):
        return Response({"customer_id": str(customer_id_of(request))})


# This module is its own URLconf (see pytest.mark.urls below), so these tests need no database.
urlpatterns = [path("whoami/", WhoAmIView.as_view())]
pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def customer() -> Customer:
    return Customer(id=uuid.uuid4(), email="ada@example.com", name="Ada")


def public_key_only_backend() -> TokenBackend:
    return TokenBackend(
        "RS256",
        signing_key=None,
        verifying_key=settings.SIMPLE_JWT["VERIFYING_KEY"],
        issuer=settings.SIMPLE_JWT["ISSUER"],
        audience=settings.SIMPLE_JWT["AUDIENCE"],
    )


@contextmanager
def verifying_process():
    """Verify as a catalog or orders service would: with no private key at all."""
    with (
        override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "SIGNING_KEY": None}),
        # simplejwt builds its backend once at import; tokens look it up here on every use.
        mock.patch("rest_framework_simplejwt.state.token_backend", public_key_only_backend()),
    ):
        yield


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def claims(customer: Customer, **overrides) -> dict:
    now = datetime.now(UTC)
    return {
        "token_type": "access",
        "exp": now + timedelta(minutes=5),
        "iat": now,
        "jti": uuid.uuid4().hex,
        "iss": settings.SIMPLE_JWT["ISSUER"],
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
        "sub": str(customer.id),
        "role": "customer",
        **overrides,
    }


def signed(payload: dict, key: str | None = None) -> str:
    """An RS256 token signed with ``key`` (default: accounts' private key)."""
    return jwt.encode(payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="RS256")


def bearer(client, token: str, url: str = WHOAMI):
    with verifying_process():
        return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def test_verifying_backend_cannot_sign():
    with pytest.raises(TypeError):
        public_key_only_backend().encode({"sub": "someone"})


def test_accounts_token_verifies_with_public_key_alone(customer):
    token = str(access_token_for(customer))

    payload = jwt.decode(
        token,
        settings.SIMPLE_JWT["VERIFYING_KEY"],
        algorithms=["RS256"],
        issuer=settings.SIMPLE_JWT["ISSUER"],
        audience=settings.SIMPLE_JWT["AUDIENCE"],
    )

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert (payload["sub"], payload["role"]) == (str(customer.id), "customer")


def test_customer_endpoint_accepts_a_valid_token(client, customer):
    response = bearer(client, str(access_token_for(customer)))

    assert response.status_code == 200, response.content
    assert response.json() == {"customer_id": str(customer.id)}


def test_hand_made_token_with_accounts_key_is_accepted(client, customer):
    """The baseline for the forgeries below: the same claims, honestly signed, open the door."""
    response = bearer(client, signed(claims(customer)))

    assert response.status_code == 200, response.content


def test_customer_endpoint_without_token_is_401(client):
    assert_unauthorized(client.get(WHOAMI))


def test_expired_token_is_rejected(client, customer):
    past = datetime.now(UTC) - timedelta(hours=1)
    token = signed(claims(customer, iat=past - timedelta(minutes=15), exp=past))

    assert_unauthorized(bearer(client, token))


def test_tampered_payload_is_rejected(client, customer):
    header, _, signature = signed(claims(customer)).split(".")
    someone_else = _segment(_jsonable(claims(customer, sub=str(uuid.uuid4()))))

    assert_unauthorized(bearer(client, f"{header}.{someone_else}.{signature}"))


def test_tampered_signature_is_rejected(client, customer):
    header, payload, signature = signed(claims(customer)).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert_unauthorized(bearer(client, f"{header}.{payload}.{flipped}"))


def test_alg_none_is_rejected(client, customer):
    token = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_jsonable(claims(customer)))}."

    assert_unauthorized(bearer(client, token))


def test_hs256_signed_with_the_public_key_is_rejected(client, customer):
    """The classic key-confusion attack: the public key is public, so an HMAC over it proves nothing."""
    public_key = settings.SIMPLE_JWT["VERIFYING_KEY"].encode()
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(_jsonable(claims(customer)))}"
    signature = _b64(hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest())

    assert_unauthorized(bearer(client, f"{signing_input}.{signature}"))


def test_token_signed_with_another_private_key_is_rejected(client, customer):
    attacker_private, _ = generate_key_pair()

    assert_unauthorized(bearer(client, signed(claims(customer), key=attacker_private)))


@pytest.mark.parametrize("issuer", ["someone-else", None], ids=["wrong-issuer", "no-issuer"])
def test_token_from_another_issuer_is_rejected(client, customer, issuer):
    payload = claims(customer, iss=issuer)
    if issuer is None:
        del payload["iss"]

    assert_unauthorized(bearer(client, signed(payload)))


@pytest.mark.parametrize("audience", ["another-shop", None], ids=["wrong-audience", "no-audience"])
def test_token_for_another_audience_is_rejected(client, customer, audience):
    payload = claims(customer, aud=audience)
    if audience is None:
        del payload["aud"]

    assert_unauthorized(bearer(client, signed(payload)))


def test_refresh_token_is_not_an_access_token(client, customer):
    refresh = RefreshToken()
    refresh["sub"], refresh["role"] = str(customer.id), "customer"
    token = signed({**refresh.payload, "iss": settings.SIMPLE_JWT["ISSUER"], "aud": settings.SIMPLE_JWT["AUDIENCE"]})

    response = bearer(client, token)

    assert_unauthorized(response)
    assert "wrong type" in response.content.decode()


def test_validly_signed_token_without_customer_role_is_forbidden(client, customer):
    response = bearer(client, signed(claims(customer, role="staff")))

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


@pytest.fixture
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db(databases=["accounts", "default"])
@pytest.mark.urls("config.urls")
@pytest.mark.usefixtures("fast_password_hashing")
def test_token_from_sign_in_opens_a_module_endpoint(client):
    from tests.accounts.factories import PASSWORD, customer_create

    customer = customer_create(email="ada@example.com")
    access = client.post(
        "/api/accounts/token/", {"email": "ada@example.com", "password": PASSWORD}, content_type="application/json"
    ).json()["access"]

    response = bearer(client, access, url="/api/accounts/me/")

    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(customer.id)


def _jsonable(payload: dict) -> dict:
    return {key: int(value.timestamp()) if isinstance(value, datetime) else value for key, value in payload.items()}


VERIFY_IN_ANOTHER_SERVICE = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.conf import settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken
    from web.auth import customer_id_of

    good, forged = json.load(sys.stdin)
    def authenticate(token):
        request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
        request.user, request.auth = JWTStatelessUserAuthentication().authenticate(request)
        return str(customer_id_of(request))
    try:
        authenticate(forged)
        forged_result = "accepted"
    except InvalidToken:
        forged_result = "rejected"
    print(json.dumps({
        "served": list(settings.SERVED_MODULES),
        "signing_key": settings.SIMPLE_JWT["SIGNING_KEY"],
        "good": authenticate(good),
        "forged": forged_result,
    }))
    """
)


def test_a_service_process_with_only_the_public_key_verifies_customer_tokens(tmp_path, customer):
    """Start a real SERVICE=orders process configured with JWT_PUBLIC_KEY only (no key files, no DEBUG)."""
    attacker_private, _ = generate_key_pair()
    tokens = [str(access_token_for(customer)), signed(claims(customer), key=attacker_private)]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("JWT_", "SERVICE"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SERVICE": "orders",
        "EVENT_TRANSPORT": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "DEBUG": "false",
        "SECRET_KEY": "verify-only-" + uuid.uuid4().hex,
        "QUIRE_VAR_DIR": str(tmp_path),
        "JWT_PUBLIC_KEY": settings.SIMPLE_JWT["VERIFYING_KEY"],
    }

    result = subprocess.run(
        [sys.executable, "-c", VERIFY_IN_ANOTHER_SERVICE],
        input=json.dumps(tokens),
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "served": ["orders"],
        "signing_key": None,
        "good": str(customer.id),
        "forged": "rejected",
    }
    assert not list(tmp_path.glob("*.pem")), "a verifying service must not generate keys"


CUSTOMER_ENDPOINTS = {
    "accounts": "/api/accounts/me/",
    "catalog": "/api/catalog/books/",  # public, but a token that is sent is checked
    "orders": "/api/orders/cart/",
    "recommendations": "/api/recommendations/me/",
}


@pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders", "recommendations"])
@pytest.mark.urls("config.urls")
@pytest.mark.parametrize("audience", ["another-shop", None], ids=["wrong-audience", "no-audience"])
@pytest.mark.parametrize("module", list(CUSTOMER_ENDPOINTS))
def test_every_modules_real_endpoint_refuses_a_token_for_another_audience(client, module, audience):
    from tests.accounts.factories import customer_create

    customer = customer_create()
    url = CUSTOMER_ENDPOINTS[module]
    assert bearer(client, signed(claims(customer)), url=url).status_code == 200  # the same token, right audience
    payload = claims(customer, aud=audience)
    if audience is None:
        del payload["aud"]

    assert_unauthorized(bearer(client, signed(payload), url=url))
