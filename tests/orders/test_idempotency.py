"""Checkout's Idempotency-Key (IETF httpapi idempotency-key draft semantics), per customer."""

from __future__ import annotations

import contextlib
import io
import threading
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from orders import idempotency, services
from orders.api.views import fingerprint_of
from orders.errors import IdempotencyKeyInFlight
from orders.models import IdempotencyRecord, Order
from tests.orders.factories import customer_client, outbox, product
from tests.support import postgres
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(databases=["orders", "default"])

ORDERS = "/api/orders/"


def checkout(client, body, key):
    return client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def lines_of(book, quantity=1):
    return {"lines": [{"book_id": book.book_id, "quantity": quantity}]}


def test_a_missing_key_is_refused_with_400_and_no_order():
    client, _ = customer_client()
    book = product()

    response = client.post(ORDERS, lines_of(book), format="json")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["Idempotency-Key"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("key", ["", "   ", "has space", "x" * 256])
def test_a_malformed_key_is_refused(key):
    client, _ = customer_client()

    response = checkout(client, lines_of(product()), key)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["Idempotency-Key"]


def test_the_same_key_and_body_twice_gives_one_order_and_the_same_response():
    client, _ = customer_client()
    book = product(price="9.99")
    key = str(uuid.uuid4())

    first = checkout(client, lines_of(book, 2), key)
    second = checkout(client, lines_of(book, 2), key)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1
    assert len(outbox("orders.OrderPlaced")) == 1


def test_a_replay_returns_the_original_response_even_after_the_order_moved_on():
    client, customer_id = customer_client()
    book = product()
    key = "checkout-1"
    first = checkout(client, lines_of(book), key)
    services.order_cancel(order_id=first.json()["id"], customer_id=customer_id)

    again = checkout(client, lines_of(book), key)

    assert again.json() == first.json()
    assert again.json()["state"] == "pending"


def test_a_quoted_key_is_the_same_key_as_the_bare_one():
    client, _ = customer_client()
    book = product()

    checkout(client, lines_of(book), '"abc-123"')
    checkout(client, lines_of(book), "abc-123")

    assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_422():
    client, _ = customer_client()
    book = product()
    checkout(client, lines_of(book, 1), "k-1")

    response = checkout(client, lines_of(book, 2), "k-1")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_a_retry_while_the_first_request_is_in_flight_is_409():
    client, customer_id = customer_client()
    book = product()
    body = lines_of(book)
    request = SimpleNamespace(method="POST", path=ORDERS)
    IdempotencyRecord.objects.create(
        customer_id=customer_id, key="k-2", fingerprint=fingerprint_of(request, body), locked_at=timezone.now()
    )

    with key_lock_held_elsewhere(customer_id, "k-2"):  # on PostgreSQL, the first request's session holds it
        response = checkout(client, body, "k-2")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert response["Retry-After"] == "1"
    assert not Order.objects.exists()


def test_an_in_flight_key_with_another_body_is_422():
    client, customer_id = customer_client()
    IdempotencyRecord.objects.create(customer_id=customer_id, key="k-3", fingerprint="0" * 64, locked_at=timezone.now())

    assert checkout(client, lines_of(product()), "k-3").status_code == 422


def test_an_abandoned_in_flight_record_is_taken_over():
    client, customer_id = customer_client()
    body = lines_of(product())
    IdempotencyRecord.objects.create(
        customer_id=customer_id,
        key="k-4",
        fingerprint=fingerprint_of(SimpleNamespace(method="POST", path=ORDERS), body),
        locked_at=timezone.now() - idempotency.IDEMPOTENCY_LOCK_TIMEOUT - timedelta(seconds=1),
    )

    response = checkout(client, body, "k-4")

    assert response.status_code == 201
    record = IdempotencyRecord.objects.get(customer_id=customer_id, key="k-4")
    assert record.status == IdempotencyRecord.Status.COMPLETED
    assert str(record.order_id) == response.json()["id"]


def test_a_request_that_lost_its_claim_cannot_complete_it():
    customer_id = uuid.uuid4()
    book = product()
    claim = idempotency.idempotency_claim(customer_id=customer_id, key="k-5", fingerprint="f")
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(lock_token=uuid.uuid4())  # taken over

    with pytest.raises(IdempotencyKeyInFlight):
        services.order_place(
            customer_id=customer_id,
            lines=[services.LineRequest(book_id=book.book_id, quantity=1)],
            idempotency=claim,
        )
    assert not Order.objects.exists()


def test_a_failed_checkout_releases_its_key_for_a_retry():
    client, _ = customer_client()
    book = product()

    assert checkout(client, {}, "k-6").status_code == 400  # empty cart
    assert not IdempotencyRecord.objects.exists()

    client.post("/api/orders/cart/items/", {"book_id": book.book_id}, format="json")
    assert checkout(client, {}, "k-6").status_code == 201


def test_keys_belong_to_one_customer():
    alice, _ = customer_client()
    bob, _ = customer_client()
    book = product()

    first = checkout(alice, lines_of(book), "shared-key")
    second = checkout(bob, lines_of(book), "shared-key")

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["customer_id"] != first.json()["customer_id"]


def test_an_expired_key_may_be_used_again():
    client, _ = customer_client()
    book = product()
    first = checkout(client, lines_of(book), "old-key")
    IdempotencyRecord.objects.filter(key="old-key").update(
        created_at=timezone.now() - idempotency.IDEMPOTENCY_TTL - timedelta(minutes=1)
    )

    second = checkout(client, lines_of(book, 2), "old-key")

    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


def test_the_purge_command_forgets_old_completed_keys_only():
    client, customer_id = customer_client()
    book = product()
    checkout(client, lines_of(book), "old")
    checkout(client, lines_of(book), "new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.create(
        customer_id=customer_id, key="stuck", fingerprint="f", locked_at=timezone.now() - timedelta(hours=30)
    )
    IdempotencyRecord.objects.filter(key="stuck").update(created_at=timezone.now() - timedelta(hours=30))

    output = io.StringIO()
    call_command("orders_purge_idempotency_keys", "--older-than-hours", "24", stdout=output)

    assert "1 idempotency record(s)" in output.getvalue()
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {"new", "stuck"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_concurrent_checkouts_with_one_key_never_make_two_orders():
    if connections["orders"].vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with the URLs of `scripts/dev/postgres.sh env` (make test does)")
    book = product()
    _, token_customer = customer_client()
    customer_id = token_customer
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []
    order_ids: set[str] = set()
    lock = threading.Lock()

    def attempt():
        client, _ = customer_client(customer_id)
        try:
            barrier.wait(timeout=10)
            response = checkout(client, lines_of(book), "race")
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 201:
                    order_ids.add(response.json()["id"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(statuses) == threads_count
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert len(order_ids) == 1
    assert Order.objects.filter(customer_id=customer_id).count() == 1


def _orders_url() -> str:
    settings_dict = connections["orders"].settings_dict
    return (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}@{settings_dict['HOST']}:"
        f"{settings_dict['PORT']}/{settings_dict['NAME']}"
    )


def _lock_elsewhere(customer_id, key):
    """Another session (a request in flight) holding the key's advisory lock: (its connection, its pid)."""
    other = postgres.connect(_orders_url())
    with other.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s), pg_backend_pid()", [idempotency._advisory_key(customer_id, key)]
        )
        locked, pid = cursor.fetchone()
    assert locked
    return other, pid


@contextlib.contextmanager
def key_lock_held_elsewhere(customer_id, key):
    if connections["orders"].vendor != "postgresql":
        yield  # without advisory locks a young in-progress row alone says "in flight"
        return
    other, _ = _lock_elsewhere(customer_id, key)
    try:
        yield
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_a_key_whose_request_lost_its_database_session_is_free_at_once():
    """The request died with its connection (the database restarted, the network cut it): no 60 s wait."""
    if connections["orders"].vendor != "postgresql":
        pytest.skip("needs PostgreSQL's advisory locks (make test starts one)")
    client, customer_id = customer_client()
    body = lines_of(product())
    other, pid = _lock_elsewhere(customer_id, "k-lost")
    IdempotencyRecord.objects.create(  # its claim, committed before its work began
        customer_id=customer_id,
        key="k-lost",
        fingerprint=fingerprint_of(SimpleNamespace(method="POST", path=ORDERS), body),
        locked_at=timezone.now(),
    )
    try:
        assert checkout(client, body, "k-lost").status_code == 409  # its session lives: it is in flight
        with connections["orders"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_for_session_end(pid)

        response = checkout(client, body, "k-lost")
    finally:
        other.close()

    assert response.status_code == 201
    record = IdempotencyRecord.objects.get(customer_id=customer_id, key="k-lost")
    assert (record.status, str(record.order_id)) == (IdempotencyRecord.Status.COMPLETED, response.json()["id"])
    assert locks_held() == 0  # the request let go of its key lock when it finished


def wait_for_session_end(pid: int) -> None:
    def ended() -> bool:
        with connections["orders"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            return cursor.fetchone()[0] == 0

    wait_until(ended, timeout=10, message=f"session {pid} ended")


def locks_held() -> int:
    with connections["orders"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
        return cursor.fetchone()[0]
