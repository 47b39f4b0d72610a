"""The HTTP API: shapes, limits, auth and problem details."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from tests.recommendations.factories import book_published, customer_client, handle, order_confirmed, shelf

pytestmark = pytest.mark.django_db(databases=["recommendations", "default"])

SIMILAR = "/api/recommendations/books/{}/similar/"
ME = "/api/recommendations/me/"
POPULAR = "/api/recommendations/popular/"


@pytest.fixture
def shop():
    handle(*shelf())
    handle(order_confirmed(uuid.uuid4(), 5, 9), order_confirmed(uuid.uuid4(), 5, 6))


def test_similar_books_name_their_reason(shop):
    response = APIClient().get(SIMILAR.format(5))

    assert response.status_code == 200
    body = response.json()
    assert body["book_id"] == 5
    first = body["results"][0]
    assert first == {
        "book_id": 6,
        "title": "Dune Messiah (Dune, #2)",
        "score": first["score"],
        "reason": "bought_together",
        "because": [5],
    }
    assert all(item["book_id"] != 5 for item in body["results"])
    assert [item["score"] for item in body["results"]] == sorted((i["score"] for i in body["results"]), reverse=True)


def test_limit_is_applied_and_capped():
    handle(*(book_published(book_id, f"Cookbook {book_id}", genres=("cookbooks",)) for book_id in range(1, 61)))
    client = APIClient()

    assert len(client.get(SIMILAR.format(1), {"limit": 3}).json()["results"]) == 3
    assert len(client.get(SIMILAR.format(1)).json()["results"]) == 10
    assert len(client.get(SIMILAR.format(1), {"limit": 500}).json()["results"]) == 50


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "2.5", "3.0", " 3", "+3", "7961729372588893.0"])
@pytest.mark.parametrize("url", [SIMILAR.format(5), POPULAR, ME])
def test_an_invalid_limit_is_a_problem_naming_limit(shop, url, limit):
    client, _ = customer_client()

    response = client.get(url, {"limit": limit})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert [error["field"] for error in body["errors"]] == ["limit"]


def test_an_unknown_book_is_a_404_problem(shop):
    response = APIClient().get(SIMILAR.format(999))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert "999" in body["detail"]
    assert body["instance"] == SIMILAR.format(999)


def test_me_needs_a_signed_in_customer(shop):
    response = APIClient().get(ME)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_me_recommends_around_purchases_and_never_an_owned_book(shop):
    client, customer_id = customer_client()
    handle(order_confirmed(customer_id, 5))

    body = client.get(ME).json()

    assert body["customer_id"] == str(customer_id)
    ids = [item["book_id"] for item in body["results"]]
    assert 5 not in ids
    assert set(ids[:2]) == {6, 9}
    assert body["results"][0]["because"] == [5]


def test_me_for_a_newcomer_is_popular_books(shop):
    client, _ = customer_client()

    body = client.get(ME).json()

    assert [item["book_id"] for item in body["results"]] == [5, 6, 9]
    assert {item["reason"] for item in body["results"]} == {"popular"}


def test_popular_by_genre(shop):
    client = APIClient()

    assert [i["book_id"] for i in client.get(POPULAR, {"genre": "science-fiction"}).json()["results"]] == [5, 6]
    body = client.get(POPULAR, {"genre": "romance"}).json()
    assert body == {"genre": "romance", "results": []}


def test_the_schema_documents_the_endpoints():
    response = APIClient().get("/api/recommendations/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/recommendations/books/{book_id}/similar/", "/api/recommendations/me/"} <= set(paths)
    assert "/api/recommendations/popular/" in paths
