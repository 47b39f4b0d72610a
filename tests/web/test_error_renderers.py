"""Every error is a well-formed response of the type it declares: problem JSON, or an HTML page for a browser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(databases=["default", "catalog", "orders", "accounts"])

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ERRORS = [
    ("get", "/api/orders/", 401),  # not signed in
    ("get", "/api/catalog/books/987654/", 404),  # no such book
    ("get", "/api/catalog/books/?genre=50%25", 400),  # invalid filter
    ("post", "/api/nowhere/", 404),  # unknown path
    ("delete", "/api/catalog/books/", 405),  # wrong method (anonymous: 401/403 first)
]


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize(("method", "path", "status"), ERRORS)
def test_an_api_client_gets_problem_json(method, path, status):
    response = getattr(APIClient(), method)(path, HTTP_ACCEPT="application/json")
    assert response.status_code in (status, 401, 403)
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)  # well-formed JSON, not an HTML page
    assert body["status"] == response.status_code and body["title"] and body["detail"]


@pytest.mark.parametrize(("method", "path", "status"), ERRORS)
def test_a_browser_gets_a_readable_html_page_with_the_same_problem(method, path, status):
    client = APIClient()
    problem = json.loads(getattr(client, method)(path, HTTP_ACCEPT="application/json").content)

    response = getattr(client, method)(path, HTTP_ACCEPT=BROWSER)

    assert response.status_code == problem["status"]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = _Text()
    page.feed(response.content.decode())
    assert {"html", "body"} <= page.tags
    text = " ".join(page.text)
    assert problem["title"] in text
    assert problem["detail"] in text


def test_no_accept_header_means_problem_json():
    response = APIClient().get("/api/orders/")
    assert response["Content-Type"] == "application/problem+json"


def test_a_success_is_still_plain_json():
    response = APIClient().get("/api/catalog/books/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_the_swagger_description_shows_the_module_placeholder():
    schema = APIClient().get("/api/catalog/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    description = schema["info"]["description"]
    assert "`/api/catalog/`" in description and "<module>" not in description
