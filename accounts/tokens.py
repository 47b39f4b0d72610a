"""The customer's JWTs: accounts signs them (RS256, private key); every module verifies them with the public key.

Access tokens carry ``sub`` (the customer id), ``role: "customer"``, ``email`` and ``name``.
Refresh tokens carry ``sub``, ``role`` and a fingerprint of the password hash, so that a
password change ends every session that was signed in before it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.errors import TokenRefused
from accounts.models import Customer
from accounts.selectors import customer_get
from web.auth import CUSTOMER_ROLE

SUBJECT_CLAIM = "sub"
ROLE_CLAIM = "role"
PASSWORD_FINGERPRINT_CLAIM = "pwd"


def _password_fingerprint(customer: Customer) -> str:
    # Keyed, so the claim says nothing about the hash; any password change alters it.
    return salted_hmac("quire.accounts.refresh-token", customer.password_hash, algorithm="sha256").hexdigest()[:32]


def access_token_lifetime_seconds() -> int:
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())


def access_token_for(customer: Customer) -> AccessToken:
    access = AccessToken()
    access[SUBJECT_CLAIM] = str(customer.id)
    access[ROLE_CLAIM] = CUSTOMER_ROLE
    access["email"] = customer.email
    access["name"] = customer.name
    return access


def token_pair_for(customer: Customer) -> dict[str, str | int]:
    """A fresh access and refresh token for a signed-in customer."""
    refresh = RefreshToken()
    refresh[SUBJECT_CLAIM] = str(customer.id)
    refresh[ROLE_CLAIM] = CUSTOMER_ROLE
    refresh[PASSWORD_FINGERPRINT_CLAIM] = _password_fingerprint(customer)
    return {
        "access": str(access_token_for(customer)),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": access_token_lifetime_seconds(),
    }


def access_token_refresh(*, refresh: str) -> tuple[Customer, AccessToken]:
    """A new access token for the customer a valid refresh token names, if that customer may still sign in.

    The access token is built from the customer's current record, so a changed name or
    email shows up at the next refresh.
    """
    try:
        token = RefreshToken(refresh)
        customer_id = uuid.UUID(str(token[SUBJECT_CLAIM]))
    except (TokenError, KeyError, ValueError) as error:
        raise TokenRefused("The refresh token is invalid or expired.") from error
    if token.get(ROLE_CLAIM) != CUSTOMER_ROLE:
        raise TokenRefused("The refresh token is not a customer's.")
    customer = customer_get(customer_id=customer_id)
    if customer is None or not customer.is_active:
        raise TokenRefused("This customer account no longer exists or is deactivated.")
    if not constant_time_compare(str(token.get(PASSWORD_FINGERPRINT_CLAIM, "")), _password_fingerprint(customer)):
        raise TokenRefused("The password changed since this refresh token was issued: sign in again.")
    return customer, access_token_for(customer)
