"""The shop from the outside, over real HTTP: the same flows against one process and against the services.

Every test makes its own customers and books (titles carry a per-run token), so the tests share
one running shop per topology without stepping on each other. Whatever crosses modules (a book
reaching orders, a reservation, a release, a sale) is awaited with ``shop.wait_until``, never
with a fixed sleep: in-process it is there at once, through Kafka within moments.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest

from tests.e2e.harness import Shop
from tests.support.http import Client, expect

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
PASSWORD = "correct-horse-battery-staple-9"
GOOD_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "cardholder_name": "E2E"}
DECLINED_CARD = {**GOOD_CARD, "card_number": "4000 0000 0000 0002"}


# --- steps ----------------------------------------------------------------------------------------


def register(shop: Shop, name: str = "Reader") -> Client:
    """A new customer, signed in (its client carries the access token)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@e2e.example"
    client = shop.client()
    created = expect(client.post("/api/accounts/register/", {"email": email, "password": PASSWORD, "name": name}), 202)
    assert created["email"] == email
    tokens = expect(client.post("/api/accounts/token/", {"email": email, "password": PASSWORD}), 200)
    client.token = tokens["access"]
    client.customer_id = expect(client.get("/api/accounts/me/"), 200)["id"]
    return client


def add_book(shop: Shop, *, title: str, on_hand: int, price: str = "12.50", author: str = "E2E Author") -> dict:
    """A book created by staff through catalog's API."""
    staff = shop.staff("catalog")
    author_id = expect(staff.post("/api/catalog/authors/", {"name": f"{author} {uuid.uuid4().hex[:10]}"}), 201)["id"]
    book = {"title": f"{title} {RUN}", "author_ids": [author_id], "price": price, "currency": "EUR", "on_hand": on_hand}
    return expect(staff.post("/api/catalog/books/", book), 201)


def stock(shop: Shop, book_id: int) -> dict:
    return expect(shop.staff("catalog").get(f"/api/catalog/books/{book_id}/stock/"), 200)


def stock_is(shop: Shop, book_id: int, **expected: int):
    """A predicate for wait_until: the book's stock has these counts (returns it, or False)."""

    def check():
        current = stock(shop, book_id)
        return current if all(current[name] == value for name, value in expected.items()) else False

    return check


def add_to_cart(shop: Shop, customer: Client, book_id: int, quantity: int) -> dict:
    """Put a book in the cart once orders has heard of it (catalog's event may still be on its way)."""

    def added():
        response = customer.post("/api/orders/cart/items/", {"book_id": book_id, "quantity": quantity})
        if response.status == 400 and "book_id" in response.text:
            return False  # orders' copy of the book has not arrived yet
        return expect(response, 200, 201)

    return shop.wait_until(added, message=f"orders accepts book {book_id} in a cart")


def wait_sellable(shop: Shop, customer: Client, book_id: int) -> None:
    """Orders knows the book (its cart accepts it); the cart is left as it was."""
    add_to_cart(shop, customer, book_id, 1)
    expect(customer.delete(f"/api/orders/cart/items/{book_id}/"), 204)


def checkout(customer: Client, body: dict, key: str | None = None):
    return customer.request(
        "POST", "/api/orders/", json_body=body, headers={"Idempotency-Key": key or str(uuid.uuid4())}
    )


def order_in_state(shop: Shop, customer: Client, order_id: str, state: str) -> dict:
    def reached():
        order = expect(customer.get(f"/api/orders/{order_id}/"), 200)
        return order if order["state"] == state else False

    return shop.wait_until(reached, message=f"order {order_id} becomes {state}")


# --- flows ----------------------------------------------------------------------------------------


def test_every_module_answers_at_one_entry_point(shop: Shop):
    anyone = shop.client()
    root = expect(anyone.get("/api/"), 200)
    assert set(root) == {"accounts", "catalog", "orders", "recommendations"}
    for module in root:
        answer = anyone.get(f"/api/{module}/")  # orders' root is the customer's order list
        assert answer.status in (200, 401) and "json" in answer.headers["Content-Type"], answer
        schema = anyone.get(f"/api/{module}/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
        assert schema.status == 200, schema
    missing = anyone.get("/api/no-such-module/")
    assert missing.status == 404 and missing.json()["status"] == 404, missing
    for module in ("catalog", "orders"):
        login = anyone.get(shop.admin_prefix(module) + "login/", headers={"Accept": "text/html"})
        if shop.process_of.get(module, "accounts") != shop.process_of.get("accounts", "accounts"):
            # A process without accounts has no staff sign-in of its own: staff sign in once, at accounts.
            assert login.status == 302, login
            assert login.headers["Location"].startswith("/admin/accounts/login/?next="), login
            login = anyone.get(login.headers["Location"], headers={"Accept": "text/html"})
        assert login.status == 200 and "csrfmiddlewaretoken" in login.text, login
    if shop.topology != "one_process":  # the gateway serves collected static files (one process has no gateway)
        css = anyone.get("/static/admin/css/base.css", headers={"Accept": "text/css"})
        assert css.status == 200 and b"body" in css.body, css


def test_register_and_sign_in(shop: Shop):
    customer = register(shop, "Ada")
    me = expect(customer.get("/api/accounts/me/"), 200)
    assert me["id"] == customer.customer_id and me["name"] == "Ada"

    stranger = shop.client()
    refused = stranger.post("/api/accounts/token/", {"email": me["email"], "password": "not-the-password"})
    assert refused.status == 401 and refused.headers["Content-Type"].startswith("application/problem+json")
    assert stranger.get("/api/orders/cart/").status == 401
    # Registration does not tell a stranger that this email has an account.
    taken = stranger.post("/api/accounts/register/", {"email": me["email"], "password": PASSWORD, "name": "Again"})
    assert taken.status == 202 and taken.json()["email"] == me["email"], taken


def test_a_deactivated_customer_is_refused_by_every_module_once_it_has_seen_the_event(shop: Shop):
    customer = register(shop, "Leaving")
    for path in ("/api/orders/cart/", "/api/recommendations/me/"):
        expect(customer.get(path), 200)

    staff = shop.staff("accounts")
    changelist = shop.admin_prefix("accounts") + "accounts/customer/"
    page = staff.get(changelist, headers={"Accept": "text/html"})
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert page.status == 200 and token, page
    done = staff.request(
        "POST",
        changelist,
        form={"action": "deactivate", "_selected_action": customer.customer_id, "csrfmiddlewaretoken": token.group(1)},
        headers={"Accept": "text/html", "Referer": staff.url(changelist)},
    )
    assert done.status == 302, done

    # accounts owns the record: at once. The others: as soon as the event reached them.
    assert customer.get("/api/accounts/me/").status == 401
    for path in ("/api/orders/cart/", "/api/recommendations/me/"):
        refused = shop.wait_until(
            lambda path=path: (answer := customer.get(path)).status == 401 and answer,
            message=f"{path} still accepts the deactivated customer's token",
        )
        assert refused.json()["code"] == "customer_inactive", refused


def test_browse_and_search_books(shop: Shop):
    word = f"Zanzibar{RUN}"
    dune = add_book(shop, title=f"Dune of {word}", on_hand=4, price="9.99")
    add_book(shop, title=f"Atlas of {word}", on_hand=2, price="19.00")
    add_book(shop, title=f"Unrelated title {uuid.uuid4().hex[:6]}", on_hand=1)

    anyone = shop.client()
    found = expect(anyone.get(f"/api/catalog/books/?search={word}"), 200)["results"]
    assert sorted(book["title"] for book in found) == sorted([f"Atlas of {word} {RUN}", f"Dune of {word} {RUN}"])
    detail = expect(anyone.get(f"/api/catalog/books/{dune['id']}/"), 200)
    assert detail["available"] == 4 and Decimal(detail["price"]) == Decimal("9.99")
    assert "on_hand" not in detail  # staff-only field

    customer = register(shop)
    refused = customer.post("/api/catalog/books/", {"title": "Mine", "author_ids": [], "price": "1.00"})
    assert refused.status in (401, 403), refused


def test_checkout_pay_and_ship_sells_the_copies(shop: Shop):
    book = add_book(shop, title="The Left Hand of Darkness", on_hand=5, price="12.50")
    customer = register(shop, "Ursula")
    cart = add_to_cart(shop, customer, book["id"], 2)
    assert Decimal(cart["total"]) == Decimal("25.00"), cart

    key = str(uuid.uuid4())
    placed = checkout(customer, {}, key)
    order = expect(placed, 201)
    assert order["state"] in ("pending", "confirmed") and Decimal(order["total"]) == Decimal("25.00")

    retry = checkout(customer, {}, key)
    assert expect(retry, 201)["id"] == order["id"]
    assert retry.headers.get("Idempotent-Replayed") == "true"
    reused = checkout(customer, {"lines": [{"book_id": book["id"], "quantity": 1}]}, key)
    assert reused.status == 422, reused

    order_in_state(shop, customer, order["id"], "confirmed")
    shop.wait_until(stock_is(shop, book["id"], on_hand=5, reserved=2, available=3), message="2 copies reserved")

    declined = customer.post(f"/api/orders/{order['id']}/pay/", DECLINED_CARD)
    assert declined.status == 402, declined
    assert expect(customer.get(f"/api/orders/{order['id']}/"), 200)["state"] == "confirmed"
    paid = expect(customer.post(f"/api/orders/{order['id']}/pay/", GOOD_CARD), 200)
    assert paid["state"] == "paid" and paid["payment_reference"]

    assert customer.post(f"/api/orders/{order['id']}/ship/").status == 403  # customers do not ship
    shipped = expect(shop.staff("orders").post(f"/api/orders/{order['id']}/ship/"), 200)
    assert shipped["state"] == "shipped"
    shop.wait_until(stock_is(shop, book["id"], on_hand=3, reserved=0, available=3), message="2 copies sold")

    mine = expect(customer.get("/api/orders/"), 200)
    assert [o["id"] for o in mine["results"]] == [order["id"]]  # the retries made no second order


def test_checkout_beyond_stock_is_rejected_with_reasons(shop: Shop):
    scarce = add_book(shop, title="Scarce", on_hand=1)
    gone = add_book(shop, title="Sold Out", on_hand=0)
    customer = register(shop)
    wait_sellable(shop, customer, scarce["id"])
    wait_sellable(shop, customer, gone["id"])

    lines = [{"book_id": scarce["id"], "quantity": 2}, {"book_id": gone["id"], "quantity": 1}]
    order = expect(checkout(customer, {"lines": lines}), 201)
    rejected = order_in_state(shop, customer, order["id"], "rejected")
    reasons = {line["book_id"]: line["rejection"] for line in rejected["lines"]}
    assert reasons[scarce["id"]]["reason"] == "insufficient_stock", reasons
    assert (reasons[scarce["id"]]["requested"], reasons[scarce["id"]]["available"]) == (2, 1)
    # The contract names both reasons; catalog may call an empty shelf either.
    assert reasons[gone["id"]]["reason"] in ("out_of_stock", "insufficient_stock"), reasons
    assert (reasons[gone["id"]]["requested"], reasons[gone["id"]]["available"]) == (1, 0)
    assert stock(shop, scarce["id"])["available"] == 1  # all lines or none: nothing was held
    assert customer.post(f"/api/orders/{order['id']}/pay/", GOOD_CARD).status == 409


def test_cancelling_a_confirmed_order_restores_the_stock(shop: Shop):
    book = add_book(shop, title="Solaris", on_hand=3)
    customer = register(shop)
    wait_sellable(shop, customer, book["id"])
    order = expect(checkout(customer, {"lines": [{"book_id": book["id"], "quantity": 2}]}), 201)
    order_in_state(shop, customer, order["id"], "confirmed")
    shop.wait_until(stock_is(shop, book["id"], reserved=2, available=1), message="2 copies reserved")

    cancelled = expect(customer.post(f"/api/orders/{order['id']}/cancel/"), 200)
    assert cancelled["state"] == "cancelled"
    shop.wait_until(stock_is(shop, book["id"], on_hand=3, reserved=0, available=3), message="the copies released")
    someone_else = register(shop)
    assert someone_else.get(f"/api/orders/{order['id']}/").status == 404


def test_recommendations_learn_from_purchases(shop: Shop):
    first = add_book(shop, title="Kindred Voyages", on_hand=10, author="Octavia")
    second = add_book(shop, title="Quiet Lighthouse Keepers", on_hand=10, author="Virginia")
    buyer = register(shop)
    wait_sellable(shop, buyer, first["id"])
    wait_sellable(shop, buyer, second["id"])
    both = [{"book_id": first["id"], "quantity": 1}, {"book_id": second["id"], "quantity": 1}]
    order_in_state(shop, buyer, expect(checkout(buyer, {"lines": both}), 201)["id"], "confirmed")

    anyone = shop.client()

    def bought_together():
        response = anyone.get(f"/api/recommendations/books/{first['id']}/similar/")
        if response.status == 404:
            return False  # recommendations has not heard of the book yet
        results = expect(response, 200)["results"]
        return next((r for r in results if r["book_id"] == second["id"] and r["reason"] == "bought_together"), False)

    pick = shop.wait_until(bought_together, message="the second book is 'bought together' with the first")
    assert pick["title"] == second["title"]

    # Someone who bought only the first book is pointed at the second, never at what they own.
    reader = register(shop)
    order = expect(checkout(reader, {"lines": [{"book_id": first["id"], "quantity": 1}]}), 201)
    order_in_state(shop, reader, order["id"], "confirmed")

    def picks_for_reader():
        results = expect(reader.get("/api/recommendations/me/"), 200)["results"]
        ids = [r["book_id"] for r in results]
        assert first["id"] not in ids, f"recommended a book the customer owns: {results}"
        return second["id"] in ids

    shop.wait_until(picks_for_reader, message="the reader's picks include the second book")


def test_every_process_reports_its_health_at_a_path_of_its_own(shop):
    modules = ("accounts", "catalog", "orders", "recommendations")
    client = shop.client()
    # One process answers for all modules at /health/; behind the gateway each service has its own path.
    prefixes = ["/health/"] if shop.topology == "one_process" else [f"/health/{module}/" for module in modules]

    for prefix in prefixes:
        live = expect(client.get(prefix + "live/"), 200)
        assert live["status"] == "ok"
        # Right after start a relay may still be catching up with the demo data: ready within a minute.
        shop.wait_until(lambda prefix=prefix: client.get(prefix + "ready/").status == 200, timeout=60)
        report = expect(client.get(prefix + "ready/"), 200)
        served = modules if shop.topology == "one_process" else (prefix.split("/")[2],)
        expected = {f"database:{module}" for module in served} | {f"outbox:{module}" for module in served}
        if shop.topology != "one_process":
            # Its relay and consumer (accounts handles no event: no consumer of its own), their progress and groups.
            module = served[0]
            expected |= {"kafka", "relay"}
            if module != "accounts" or shop.topology == "grouped":
                expected.add("consumer")
                assert report["checks"]["consumer"]["age_seconds"] < 120, report
            if module != "accounts":
                groups = [name for name in report["checks"] if name.startswith("consumer-group:")]
                assert any(name.endswith(f".{module}") for name in groups), report
        assert expected <= set(report["checks"]), report
        assert all(check["status"] == "ok" for check in report["checks"].values()), report
