"""Rate limits on every way in that checks a password, and the bound on concurrent password hashing.

The counters live in the shared store (the ``throttle`` DatabaseCache on ``default``); that they
hold across processes is shown by tests/e2e/test_throttling.py.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.test import APIClient

from orders.models import PaymentAttempt
from tests.accounts.factories import PASSWORD, address_data, client_for, customer_create
from tests.orders.factories import DECLINED_CARD, VALID_CARD, confirmed_order, customer_client, product
from tests.support.waiting import wait_until
from web.throttling import password_hash_slot

pytestmark = pytest.mark.django_db(databases=["accounts", "orders", "default"])

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


def test_an_attacker_flooding_an_account_does_not_lock_its_customer_out(rates):
    rates(sign_in="5/hour", sign_in_account="3/hour")
    ada = customer_create(email="ada@example.com")
    # One attacker, then many: each address fails until it is refused, on Ada's account only.
    for attacker in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
        statuses = [sign_in("ADA@example.com ", REMOTE_ADDR=attacker).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429], (attacker, statuses)

    # Ada, from her own address, signs in with her password at once.
    assert sign_in(ada.email, PASSWORD, REMOTE_ADDR="198.51.100.20").status_code == 200


def test_failed_sign_ins_are_limited_per_account_and_client_address(rates):
    rates(sign_in_account="3/hour")
    ada = customer_create(email="ada@example.com")
    customer_create(email="bob@example.com")
    for _ in range(3):
        assert sign_in("ada@example.com", REMOTE_ADDR="10.0.0.1").status_code == 401
    # This address has used its failures on Ada's account: refused before any password check.
    assert_throttled(sign_in(ada.email, PASSWORD, REMOTE_ADDR="10.0.0.1"))
    # Another account from the same address, and the same account from another, are counted apart.
    assert sign_in("bob@example.com", PASSWORD, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert sign_in(ada.email, PASSWORD, REMOTE_ADDR="10.0.0.2").status_code == 200


def test_successful_sign_ins_do_not_count_against_the_account(rates):
    rates(sign_in_account="2/hour")
    ada = customer_create(email="ada@example.com")
    for _ in range(4):
        assert sign_in(ada.email, PASSWORD).status_code == 200
    assert sign_in(ada.email).status_code == 401  # the first failure of two allowed
    assert sign_in(ada.email, PASSWORD).status_code == 200


def test_an_ipv6_client_is_counted_by_its_64_block(rates):
    rates(sign_in="2/hour")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"):
        assert sign_in("a@example.com", REMOTE_ADDR=host).status_code == 401
    assert_throttled(sign_in("a@example.com", REMOTE_ADDR="2001:db8:1:2:abcd::1"))
    assert sign_in("a@example.com", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401  # another /64


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


def test_staff_login_failures_are_limited_per_username_and_address(rates):
    rates(admin_login_account="2/hour")
    get_user_model().objects.create_user(username="operator", password="right-Pa55word", is_staff=True)

    def login(password: str, address: str, username: str = "operator"):
        return APIClient().post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)

    assert login("x", "10.0.1.1").status_code == 200  # the form again, with its error
    assert login("x", "10.0.1.1", username="Operator ").status_code == 200  # the same username, counted once
    assert_throttled(login("right-Pa55word", "10.0.1.1"))
    # The operator, from another address, is not locked out by those failures.
    assert login("right-Pa55word", "10.0.1.9").status_code == 302


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


# --- customers' writes: checkout, payments, cart, address book ------------------------------------


def checkout(client, book, **extra):
    body = {"lines": [{"book_id": book.book_id, "quantity": 1}]}
    return client.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **extra)


def test_checkout_is_limited_per_customer_and_per_client_address_and_reads_are_free(rates):
    rates(checkout="2/hour")
    book = product(available=100)
    ada, _ = customer_client()
    for _ in range(2):
        assert checkout(ada, book, REMOTE_ADDR="10.0.2.1").status_code == 201
    assert_throttled(checkout(ada, book, REMOTE_ADDR="10.0.2.2"))  # the customer, from anywhere
    bob, _ = customer_client()
    assert_throttled(checkout(bob, book, REMOTE_ADDR="10.0.2.1"))  # the address, whoever signs in there
    assert checkout(bob, book, REMOTE_ADDR="10.0.2.3").status_code == 201
    for _ in range(3):
        assert ada.get("/api/orders/", REMOTE_ADDR="10.0.2.1").status_code == 200


def test_declined_payments_are_limited_and_then_no_card_is_charged(rates):
    rates(payment_declined="2/hour")
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))
    for _ in range(2):
        assert client.post(f"/api/orders/{order.id}/pay/", DECLINED_CARD, format="json").status_code == 402

    assert_throttled(client.post(f"/api/orders/{order.id}/pay/", VALID_CARD, format="json"))
    assert PaymentAttempt.objects.filter(order=order).count() == 2  # the third card never reached the gateway
    order.refresh_from_db()
    assert order.state == "confirmed"


def test_approved_payments_do_not_count_as_declines(rates):
    rates(payment_declined="1/hour")
    client, customer_id = customer_client()
    for _ in range(3):
        order = confirmed_order(customer_id, (product(), 1))
        assert client.post(f"/api/orders/{order.id}/pay/", VALID_CARD, format="json").status_code == 200


def test_cart_writes_are_limited_and_reading_the_cart_is_free(rates):
    rates(cart="3/hour")
    client, _ = customer_client()
    book = product()
    assert client.post("/api/orders/cart/items/", {"book_id": book.book_id}, format="json").status_code == 201
    assert client.patch(f"/api/orders/cart/items/{book.book_id}/", {"quantity": 2}, format="json").status_code == 200
    assert client.delete(f"/api/orders/cart/items/{book.book_id}/").status_code == 204
    assert_throttled(client.delete("/api/orders/cart/"))
    for _ in range(4):
        assert client.get("/api/orders/cart/").status_code == 200
        assert client.get("/api/orders/cart/items/").status_code == 200


def test_address_book_writes_are_limited_per_customer(rates):
    rates(address_write="2/hour")
    customer = customer_create()
    client = client_for(customer)
    created = client.post("/api/accounts/addresses/", address_data(), format="json")
    assert created.status_code == 201
    address = f"/api/accounts/addresses/{created.json()['id']}/"
    assert client.patch(address, {"city": "Leeds"}, format="json").status_code == 200
    assert_throttled(client.delete(address))
    assert_throttled(client_for(customer).post("/api/accounts/addresses/", address_data(), REMOTE_ADDR="10.3.3.3"))
    assert client.get(address).status_code == 200 and client.get("/api/accounts/addresses/").status_code == 200


# --- the counters' table ------------------------------------------------------------------------------


def counter_rows() -> int:
    table = django_settings.CACHES["throttle"]["LOCATION"]
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE cache_key LIKE %s",
            [f"%{django_settings.THROTTLE_KEY_PREFIX}%"],
        )
        return cursor.fetchone()[0]


def test_a_flood_refused_at_its_limit_writes_no_more_counters(rates):
    rates(sign_in="3/hour", sign_in_account="5/hour")
    for number in range(3):
        assert sign_in(f"guess{number}@example.com", REMOTE_ADDR="10.4.4.4").status_code == 401
    rows = counter_rows()
    assert rows == 1 + 3  # the address's count, and a failure count per email tried from it

    for number in range(50):  # each with a new email: a new counter each, were it written
        assert_throttled(sign_in(f"flood{number}@example.com", REMOTE_ADDR="10.4.4.4"))
    assert counter_rows() == rows
