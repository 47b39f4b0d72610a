"""Rate limits on every way in that checks a password, and the bound on concurrent password hashing.

The counters live in the shared store (the ``throttle`` DatabaseCache on ``default``); that they
hold across processes is shown by tests/e2e/test_throttling.py.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.accounts.factories import PASSWORD, client_for, customer_create
from tests.support.waiting import wait_until
from web.throttling import password_hash_slot

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])

SIGN_IN = "/api/accounts/token/"


@pytest.fixture
def rates(settings):
    """Small limits per hour, started well inside a window (a test never straddles two)."""
    settings.THROTTLE_RATES = dict.fromkeys(settings.THROTTLE_RATES, "")
    wait_until(lambda: time.time() % 3600 < 3590, timeout=15, message="ten seconds or more left in the hour window")

    def set_rates(**values: str) -> None:
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **values}

    return set_rates


def sign_in(email: str, password: str = "wrong", **extra):
    return APIClient().post(SIGN_IN, {"email": email, "password": password}, format="json", **extra)


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 429 and body["code"] == "throttled", body
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 3600
    return body


def test_sign_in_is_limited_per_client_address_and_refused_before_any_password_check(rates):
    rates(sign_in="3/hour")
    ada = customer_create(email="ada@example.com")
    for number in range(3):
        assert sign_in(f"guess{number}@example.com").status_code == 401

    assert_throttled(sign_in(ada.email, PASSWORD))  # even the right password: the address is over its limit
    # Another client address has its own allowance.
    assert sign_in(ada.email, PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_a_forged_forwarded_for_header_buys_no_fresh_allowance(rates, settings):
    rates(sign_in="2/hour")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    for number in range(2):
        assert sign_in("a@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}").status_code == 401
    assert_throttled(sign_in("a@example.com", HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_behind_the_gateway_the_address_it_saw_is_the_one_counted(rates, settings):
    rates(sign_in="2/hour")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # nginx appends the peer's address; whatever the client put before it is not trusted.
    for forged in ("1.1.1.1", "2.2.2.2"):
        assert sign_in("a@example.com", HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.7").status_code == 401
    assert_throttled(sign_in("a@example.com", HTTP_X_FORWARDED_FOR="3.3.3.3, 198.51.100.7"))
    assert sign_in("a@example.com", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 401


def test_sign_in_is_limited_per_account_from_any_number_of_addresses(rates):
    rates(sign_in_account="3/hour")
    ada = customer_create(email="ada@example.com")
    for number in range(3):
        assert sign_in("ADA@example.com ", REMOTE_ADDR=f"10.0.0.{number}").status_code == 401
    assert_throttled(sign_in(ada.email, PASSWORD, REMOTE_ADDR="10.0.0.99"))
    assert sign_in("bob@example.com", REMOTE_ADDR="10.0.0.99").status_code == 401


def test_registration_is_limited_per_client_address(rates):
    rates(register="2/hour")
    for number in range(2):
        body = {"email": f"new{number}@example.com", "password": PASSWORD, "name": "New"}
        assert APIClient().post("/api/accounts/register/", body, format="json").status_code == 202
    body = {"email": "third@example.com", "password": PASSWORD, "name": "New"}
    assert_throttled(APIClient().post("/api/accounts/register/", body, format="json"))


def test_refresh_is_limited_per_client_address(rates):
    rates(refresh="2/hour")
    for _ in range(2):
        assert APIClient().post("/api/accounts/token/refresh/", {"refresh": "x"}, format="json").status_code == 401
    assert_throttled(APIClient().post("/api/accounts/token/refresh/", {"refresh": "x"}, format="json"))


def test_password_change_is_limited_per_customer(rates):
    rates(password_change="2/hour")
    customer = customer_create()
    client = client_for(customer)
    wrong = {"old_password": "not it", "new_password": "another long passphrase"}
    for _ in range(2):
        assert client.post("/api/accounts/me/password/", wrong, format="json").status_code == 400
    assert_throttled(client.post("/api/accounts/me/password/", wrong, format="json"))
    # From a second device (another address) the same customer is still over the limit.
    other = client_for(customer)
    assert_throttled(other.post("/api/accounts/me/password/", wrong, format="json", REMOTE_ADDR="10.9.9.9"))


@pytest.mark.parametrize("login", ["/admin/login/", "/api-auth/login/"])
def test_staff_logins_are_limited_too(rates, login):
    rates(admin_login="3/hour")
    get_user_model().objects.create_user(username="operator", password="right-Pa55word", is_staff=True)
    client = APIClient(enforce_csrf_checks=False)
    for _ in range(2):
        refused = client.post(login, {"username": "operator", "password": "wrong"})
        assert refused.status_code == 200  # the form again, with its error
    for _ in range(3):
        assert client.get(login).status_code == 200  # showing the form is not an attempt
    assert client.post(login, {"username": "operator", "password": "wrong"}).status_code == 200
    body = assert_throttled(client.post(login, {"username": "operator", "password": "right-Pa55word"}))
    assert body["instance"] == login


def test_staff_login_is_limited_per_username(rates):
    rates(admin_login_account="2/hour")
    for number in range(2):
        APIClient().post("/admin/login/", {"username": "Operator", "password": "x"}, REMOTE_ADDR=f"10.0.1.{number}")
    assert_throttled(
        APIClient().post("/admin/login/", {"username": "operator", "password": "x"}, REMOTE_ADDR="10.0.1.9")
    )


def test_throttling_can_be_switched_off(rates, settings):
    rates(sign_in="1/hour")
    settings.THROTTLE_ENABLED = False
    for _ in range(3):
        assert sign_in("a@example.com").status_code == 401


def test_a_sign_in_that_finds_no_free_hashing_slot_is_503_not_a_queue(settings):
    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT_SECONDS = 0.05
    customer_create(email="ada@example.com")
    with password_hash_slot():  # another request is hashing: the only slot of this process is taken
        response = sign_in("ada@example.com", PASSWORD)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "2" and response.json()["code"] == "busy"
    assert sign_in("ada@example.com", PASSWORD).status_code == 200  # the slot is free again


def test_staff_login_without_a_free_hashing_slot_is_503(settings):
    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT_SECONDS = 0.05
    with password_hash_slot():
        response = APIClient().post("/admin/login/", {"username": "operator", "password": "x"})
    assert response.status_code == 503 and response["Retry-After"] == "2"
