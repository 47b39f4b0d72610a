"""Input built to break the server is a 4xx problem naming what is wrong, never a 500 (issue 11).

One test (or a few) per class of input that used to end in a 500; the integer-range class runs
on SQLite here and again on PostgreSQL in the PostgreSQL stage (``on_each_database``).
"""

from __future__ import annotations

import base64
import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Address
from orders.models import CartItem, Order
from orders.services import MAX_ORDER_LINES
from tests.accounts.factories import address_create, client_for, customer_create
from tests.catalog.factories import book_create, books_bulk_create
from tests.orders.factories import customer_client, product
from tests.support.databases import on_each_database, use_database
from tests.support.processes import settings_of
from web.limits import BIGINT_MAX, JSON_MAX_DEPTH

pytestmark = pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders"])

BOOKS = "/api/catalog/books/"
TOO_BIG = BIGINT_MAX + 1  # 9223372036854775808: beyond every integer column of SQLite and PostgreSQL


def assert_problem(response, status: int, *fields: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    if fields:
        assert set(fields) <= {error["field"] for error in body.get("errors", [])}, body
    return body


def cursor(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# --- user text reaching a %-format ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["50%", "%s", "%(slug)s", "100%d"])
def test_a_percent_sign_in_a_filter_value_is_a_400_naming_the_filter(value):
    body = assert_problem(APIClient().get(BOOKS, {"genre": value}), 400, "genre")
    assert repr(value) in body["errors"][0]["message"]  # the client's own text, shown as sent


def test_a_percent_sign_in_a_range_filter_error_is_shown_as_sent():
    response = APIClient().get(BOOKS, {"year_min": "2000", "year_max": "1990"})
    body = assert_problem(response, 400, "year_max")
    assert "year_min (2000)" in body["errors"][0]["message"]


# --- cursors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordering", "value"),
    [
        ("created", True),  # a bool where a timestamp belongs (was TypeError in fromisoformat)
        ("created", 12),
        ("created", "not a date"),
        ("price", "abc"),  # a string where a price belongs
        ("price", "1" * 40),  # more digits than the column holds
        ("year", "1999"),  # a string where a year belongs (was an IntegrityError on SQLite)
        ("year", TOO_BIG),
        ("title", 5),
        ("title", None),  # null for a column that has no nulls
    ],
)
def test_a_cursor_with_a_value_of_the_wrong_type_is_a_400_naming_the_cursor(ordering, value):
    book_create()
    raw = cursor({"v": value, "k": 1, "b": False, "s": ordering})
    assert_problem(APIClient().get(BOOKS, {"ordering": ordering, "cursor": raw}), 400, "cursor")


@pytest.mark.parametrize("pk", [True, "1", TOO_BIG, 0, 1.5])
def test_a_cursor_with_a_bad_key_is_a_400(pk):
    raw = cursor({"v": "A", "k": pk, "b": False, "s": "title"})
    assert_problem(APIClient().get(BOOKS, {"cursor": raw}), 400, "cursor")


@pytest.mark.parametrize(
    "raw",
    [
        base64.urlsafe_b64encode(b"[" * 5000).decode(),  # nests to exhaust the JSON decoder
        "A" * 100_000,  # far longer than any cursor the API writes
        base64.urlsafe_b64encode(b'{"v":' * 3000).decode(),
    ],
    ids=["deep", "long", "deep-objects"],
)
def test_cursors_built_to_exhaust_the_decoder_are_refused(raw):
    assert_problem(APIClient().get(BOOKS, {"cursor": raw}), 400, "cursor")


def test_a_real_cursor_still_pages_through_every_ordering():
    books_bulk_create(5)
    for ordering in ("title", "-price", "year", "-created"):
        seen, url = [], f"{BOOKS}?ordering={ordering}&page_size=2"
        while url:
            body = APIClient().get(url).json()
            seen += [book["id"] for book in body["results"]]
            url = body["next"]
        assert len(seen) == len(set(seen)) == 5, ordering


# --- bodies: size and nesting ----------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_problem_with_the_limit(settings):
    limit = settings.REQUEST_BODY_MAX_BYTES
    body = json.dumps({"email": "a" * limit, "password": "x"})
    response = APIClient().post("/api/accounts/token/", body, content_type="application/json")
    problem = assert_problem(response, 413)
    assert problem["title"] == "Content Too Large"
    assert str(limit) in problem["detail"]


def test_the_limit_is_one_setting_for_the_middleware_and_django_reading(tmp_path):
    names = ["REQUEST_BODY_MAX_BYTES", "DATA_UPLOAD_MAX_MEMORY_SIZE"]
    default = settings_of(tmp_path, names)
    assert default == dict.fromkeys(names, 1024 * 1024)  # the documented default
    # One variable sets both: the middleware's Content-Length check and Django's own read limit.
    assert settings_of(tmp_path, names, REQUEST_BODY_MAX_BYTES="12345") == dict.fromkeys(names, 12345)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_a_body_that_outgrows_djangos_read_limit_is_a_413_problem():
    # No Content-Length check can stop it here (the middleware's limit is larger): Django's own
    # read limit raises RequestDataTooBig inside DRF, which used to be a 500.
    response = APIClient().post("/api/accounts/token/", {"email": "a" * 200 + "@x.org", "password": "p"}, format="json")
    assert_problem(response, 413)


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_json_is_a_400_problem(depth):
    body = "[" * depth + "]" * depth
    problem = assert_problem(APIClient().post("/api/accounts/token/", body, content_type="application/json"), 400)
    assert "deeper than" in problem["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"email": "[" * 500 + "@example.com", "password": "{" * 100})
    response = APIClient().post("/api/accounts/token/", text, content_type="application/json")
    assert_problem(response, 400, "email")  # read, then refused as an email: not as nesting


def test_nan_is_not_json():
    response = APIClient().post("/api/accounts/token/", '{"email": NaN}', content_type="application/json")
    assert "JSON parse error" in assert_problem(response, 400)["detail"]


# --- integers beyond the database's range -----------------------------------------------------------


@on_each_database
@pytest.mark.parametrize("param", ["offset", "limit"])
def test_integers_beyond_the_range_in_pagination_parameters(database, param):
    use_database(database, "orders")
    client, customer_id = customer_client()
    orders_create(customer_id, 101)
    response = client.get("/api/orders/", {param: str(TOO_BIG)})
    if param == "offset":
        assert_problem(response, 400, "offset")
    else:  # capped, as every page size is
        assert response.status_code == 200
        assert len(response.json()["results"]) == 100


@on_each_database
@pytest.mark.parametrize(
    ("param", "value"),
    [("author", TOO_BIG), ("author", f"1,{TOO_BIG}"), ("year_min", 2**31), ("year_max", -(2**31) - 1)],
)
def test_integers_beyond_the_range_in_filters(database, param, value):
    use_database(database, "orders")
    assert_problem(APIClient().get(BOOKS, {param: str(value)}), 400, param)


@on_each_database
@pytest.mark.parametrize(
    "path", [f"{BOOKS}{TOO_BIG}/", f"/api/catalog/authors/{TOO_BIG}/", f"/api/orders/cart/items/{TOO_BIG}/"]
)
def test_integers_beyond_the_range_in_paths_are_not_found(database, path):
    use_database(database, "orders")
    client, _ = customer_client()
    assert_problem(client.get(path), 404)


@on_each_database
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/orders/cart/items/", {"book_id": TOO_BIG}, "book_id"),
        ("/api/orders/cart/items/", {"book_id": 1, "quantity": TOO_BIG}, "quantity"),
    ],
)
def test_integers_beyond_the_range_in_bodies(database, url, body, field):
    use_database(database, "orders")
    client, _ = customer_client()
    assert_problem(client.post(url, body, format="json"), 400, field)


@on_each_database
def test_integers_beyond_the_range_in_checkout_lines(database):
    use_database(database, "orders")
    client, _ = customer_client()
    response = client.post(
        "/api/orders/", {"lines": [{"book_id": TOO_BIG, "quantity": 1}]}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert_problem(response, 400, "lines[0].book_id")


# --- OPTIONS ----------------------------------------------------------------------------------------


def test_options_on_object_endpoints_for_a_signed_in_customer():
    customer = customer_create()
    address = address_create(customer=customer)
    client, _ = customer_client()
    for response in (
        client.options("/api/orders/cart/items/12/"),
        client.options("/api/orders/00000000-0000-0000-0000-000000000001/"),
        client_for(customer).options(f"/api/accounts/addresses/{address.id}/"),
        client_for(customer).options("/api/accounts/me/"),
    ):
        assert response.status_code == 200, response.content[:300]
        assert response.json()["name"]
    # and it still tells what a PUT takes, where the caller may PUT
    actions = client_for(customer).options(f"/api/accounts/addresses/{address.id}/").json()["actions"]
    assert "line1" in actions["PUT"]


# --- page sizes and cart size ------------------------------------------------------------------------


def orders_create(customer_id, count: int) -> None:
    Order.objects.bulk_create([Order(customer_id=customer_id, currency="EUR") for _ in range(count)])


def test_addresses_and_orders_pages_are_capped():
    customer = customer_create()
    Address.objects.bulk_create(
        [
            Address(customer_id=customer.id, recipient=f"A{i}", line1="1", city="C", postal_code="P", country="GB")
            for i in range(111)
        ]
    )
    body = client_for(customer).get("/api/accounts/addresses/", {"limit": 10_000}).json()
    assert body["count"] == 111
    assert len(body["results"]) == 100

    client, customer_id = customer_client()
    orders_create(customer_id, 105)
    body = client.get("/api/orders/", {"limit": 10_000}).json()
    assert body["count"] == 105
    assert len(body["results"]) == 100
    assert len(client.get("/api/orders/").json()["results"]) == 20  # the default page


def test_a_cart_holds_no_more_lines_than_a_checkout_takes():
    client, customer_id = customer_client()
    books = [product() for _ in range(MAX_ORDER_LINES + 1)]
    for book in books[:MAX_ORDER_LINES]:
        assert client.post("/api/orders/cart/items/", {"book_id": book.book_id}, format="json").status_code == 201
    response = client.post("/api/orders/cart/items/", {"book_id": books[-1].book_id}, format="json")
    body = assert_problem(response, 400, "book_id")
    assert str(MAX_ORDER_LINES) in body["detail"] + json.dumps(body["errors"])
    assert CartItem.objects.filter(cart__customer_id=customer_id).count() == MAX_ORDER_LINES
    # adding to a line already there is still fine
    assert client.post("/api/orders/cart/items/", {"book_id": books[0].book_id}, format="json").status_code == 200


# --- unknown paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_any_method_on_an_unknown_api_path_is_a_404_problem_not_a_csrf_page(method):
    client = APIClient(enforce_csrf_checks=True)
    body = assert_problem(getattr(client, method)("/api/nowhere/", {}), 404)
    assert body["instance"] == "/api/nowhere/"
