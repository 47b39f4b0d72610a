"""One staff identity: accounts' admin issues the staff token, a service without accounts accepts it.

The unit test process serves every module, so the accepting side is exercised by swapping accounts'
issuing middleware for the verifying one (what settings choose in a process without accounts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from accounts.staff_tokens import staff_token_for
from config.keys import generate_key_pair
from web.staff import staff_claims_verify

pytestmark = pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders"])

PASSWORD = "Staff-Pa55word!"
BOOKS = "/admin/catalog/book/"
ORDERS = "/admin/orders/order/"
VERIFYING = [
    "web.staff.StaffTokenMiddleware" if name == "accounts.staff_tokens.StaffTokenIssueMiddleware" else name
    for name in settings.MIDDLEWARE
]


def staff_user(username: str = "clerk", *, permissions: tuple[str, ...] = ("catalog.view_book",)) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    for name in permissions:
        label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=label, codename=codename))
    return User.objects.get(pk=user.pk)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def signed_in_at_accounts(user: User) -> Client:
    client = Client()
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302, response.content.decode()[:1000]
    return client


def test_accounts_admin_login_sets_a_staff_token_scoped_to_the_admin():
    client = signed_in_at_accounts(staff_user(permissions=("catalog.view_book", "orders.view_order")))

    cookie = client.cookies[settings.STAFF_TOKEN_COOKIE]
    claims = claims_of(cookie.value)
    assert cookie["path"] == "/admin/" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert claims["sub"] == "clerk" and claims["is_superuser"] is False
    assert claims["permissions"] == ["catalog.view_book", "orders.view_order"]
    assert claims["aud"] == "quire-admin" and claims["iss"] == settings.SIMPLE_JWT["ISSUER"]
    assert claims["exp"] - claims["iat"] == settings.STAFF_TOKEN_SECONDS
    assert staff_claims_verify(cookie.value) == claims


def test_a_failed_login_sets_no_token():
    staff_user()
    response = Client().post("/admin/login/", {"username": "clerk", "password": "wrong", "next": "/admin/"})
    assert response.status_code == 200 and settings.STAFF_TOKEN_COOKIE not in response.cookies


def token_client(token: str) -> Client:
    client = Client()
    client.cookies[settings.STAFF_TOKEN_COOKIE] = token
    return client


@override_settings(MIDDLEWARE=VERIFYING)
def test_another_service_accepts_the_token_with_exactly_its_permissions():
    token = staff_token_for(staff_user("remote-clerk"))
    User.objects.filter(username="remote-clerk").delete()  # as in a service of its own: nobody made it here
    client = token_client(token)

    assert client.get(BOOKS).status_code == 200
    assert client.get(ORDERS).status_code == 403  # not given: refused, though signed in
    shadow = User.objects.get(username="remote-clerk")
    assert shadow.is_staff and not shadow.is_superuser and not shadow.has_usable_password()
    assert shadow.get_all_permissions() == {"catalog.view_book"}


@override_settings(MIDDLEWARE=VERIFYING)
def test_permissions_follow_the_latest_token():
    user = staff_user("clerk", permissions=("catalog.view_book",))
    client = token_client(staff_token_for(user))
    assert client.get(ORDERS).status_code == 403

    user.user_permissions.set([Permission.objects.get(codename="view_order")])
    client.cookies[settings.STAFF_TOKEN_COOKIE] = staff_token_for(User.objects.get(pk=user.pk))

    assert client.get(ORDERS).status_code == 200
    assert client.get(BOOKS).status_code == 403  # withdrawn
    assert User.objects.get(username="clerk").get_all_permissions() == {"orders.view_order"}


@override_settings(MIDDLEWARE=VERIFYING)
def test_a_superuser_token_opens_everything():
    user = User.objects.create_superuser("boss", password=PASSWORD)
    token = staff_token_for(user)
    client = token_client(token)
    assert claims_of(token)["is_superuser"] is True and claims_of(token)["permissions"] == []  # implied: all
    assert client.get(BOOKS).status_code == 200 and client.get(ORDERS).status_code == 200


def forged(**changes) -> str:
    now = datetime.now(UTC)
    claims = {
        "token_type": "staff",
        "sub": "intruder",
        "is_superuser": True,
        "permissions": [],
        "iss": settings.SIMPLE_JWT["ISSUER"],
        "aud": settings.STAFF_TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    key = changes.pop("key", settings.SIMPLE_JWT["SIGNING_KEY"])
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(forged(key=generate_key_pair()[0]), id="another key"),
        pytest.param(forged(aud="quire"), id="a customer audience"),
        pytest.param(forged(iss="someone-else"), id="another issuer"),
        pytest.param(forged(exp=int(datetime.now(UTC).timestamp()) - 5), id="expired"),
        pytest.param(forged(token_type="access"), id="not a staff token"),
        pytest.param(forged(exp=None), id="no expiry"),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
@override_settings(MIDDLEWARE=VERIFYING)
def test_a_bad_token_signs_nobody_in(token):
    response = token_client(token).get(BOOKS)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not User.objects.filter(username="intruder").exists()


@override_settings(MIDDLEWARE=VERIFYING)
def test_the_session_ends_with_the_token():
    client = token_client(staff_token_for(staff_user()))
    assert client.get(BOOKS).status_code == 200

    del client.cookies[settings.STAFF_TOKEN_COOKIE]  # signed out at accounts, or expired in the browser

    response = client.get(BOOKS)
    assert response.status_code == 302 and "/login/" in response["Location"]


@override_settings(MIDDLEWARE=VERIFYING)
def test_logout_clears_the_staff_token():
    client = token_client(staff_token_for(staff_user()))
    assert client.get(BOOKS).status_code == 200

    response = client.post("/admin/logout/")

    assert response.status_code == 200
    cleared = response.cookies[settings.STAFF_TOKEN_COOKIE]
    assert cleared.value == "" and cleared["path"] == "/admin/" and cleared["max-age"] == 0


def test_a_staff_token_is_no_customer_token():
    token = staff_token_for(staff_user())
    response = Client().get("/api/orders/cart/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_logout_at_accounts_clears_the_staff_token():
    client = signed_in_at_accounts(staff_user())
    response = client.post("/admin/logout/")
    assert response.cookies[settings.STAFF_TOKEN_COOKIE].value == ""
