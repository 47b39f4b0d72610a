"""Every error is a well-formed response of the type it declares: problem JSON, or an HTML page for a browser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from web.throttling import password_hash_slot

pytestmark = pytest.mark.django_db(databases=["default", "catalog", "orders", "accounts"])

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ERRORS = [
    ("get", "/api/orders/", 401),  # not signed in
    ("get", "/api/catalog/books/987654/", 404),  # no such book
    ("get", "/api/catalog/books/?genre=50%25", 400),  # invalid filter
    ("post", "/api/nowhere/", 404),  # unknown path
    ("delete", "/api/accounts/register/", 405),  # wrong method (on a view anyone may call: no 401 first)
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
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)  # well-formed JSON, not an HTML page
    assert body["status"] == response.status_code and body["title"] and body["detail"]


def assert_readable_page_of(response, problem: dict) -> None:
    assert response.status_code == problem["status"]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = _Text()
    page.feed(response.content.decode())
    assert {"html", "body"} <= page.tags
    text = " ".join(page.text)
    assert problem["title"] in text
    # The page shows the problem as JSON: a quote in the detail is written \".
    assert json.dumps(problem["detail"], ensure_ascii=False)[1:-1] in text


@pytest.mark.parametrize(("method", "path", "status"), ERRORS)
def test_a_browser_gets_a_readable_html_page_with_the_same_problem(method, path, status):
    client = APIClient()
    problem = json.loads(getattr(client, method)(path, HTTP_ACCEPT="application/json").content)

    response = getattr(client, method)(path, HTTP_ACCEPT=BROWSER)

    assert_readable_page_of(response, problem)


# --- refusals made outside DRF's views: the body limit, and throttled or busy staff logins ------------


def assert_problem_json(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    problem = json.loads(response.content)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


@pytest.mark.parametrize("path", ["/api/accounts/token/", "/admin/login/", "/api-auth/login/"])
def test_a_body_over_the_limit_is_a_413_of_the_type_asked_for(settings, path):
    settings.REQUEST_BODY_MAX_BYTES = 100
    body = "x" * 101

    problem = assert_problem_json(
        APIClient().post(path, body, content_type="application/json", HTTP_ACCEPT="application/json"), 413
    )
    page = APIClient().post(path, body, content_type="application/x-www-form-urlencoded", HTTP_ACCEPT=BROWSER)

    assert problem["code"] == "too_large" and "100 bytes" in problem["detail"]
    assert_readable_page_of(page, problem)


@pytest.fixture
def operator(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "admin_login": "1/hour"}
    return get_user_model().objects.create_user(username="operator", password="right-Pa55word", is_staff=True)


@pytest.mark.parametrize("login", ["/admin/login/", "/api-auth/login/"])
def test_a_throttled_staff_login_is_a_429_of_the_type_asked_for(operator, login):
    form = {"username": "operator", "password": "wrong"}
    client = APIClient()
    assert client.post(login, form, HTTP_ACCEPT=BROWSER).status_code == 200  # the form again, with its error

    problem = assert_problem_json(client.post(login, form, HTTP_ACCEPT="application/json"), 429)
    page = client.post(login, form, HTTP_ACCEPT=BROWSER)

    assert problem["code"] == "throttled" and int(page["Retry-After"]) >= 1
    assert_readable_page_of(page, {**problem, "detail": page_detail(problem)})


def page_detail(problem: dict) -> str:
    # The seconds left may tick between the two requests: the page is compared without them.
    return problem["detail"].split(";")[0]


@pytest.mark.parametrize("login", ["/admin/login/", "/api-auth/login/"])
def test_a_staff_login_without_a_free_hashing_slot_is_a_503_of_the_type_asked_for(settings, operator, login):
    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT_SECONDS = 0.05
    form = {"username": "operator", "password": "right-Pa55word"}
    with password_hash_slot():  # another request is hashing: the only slot of this process is taken
        problem = assert_problem_json(APIClient().post(login, form, HTTP_ACCEPT="application/json"), 503)
        page = APIClient().post(login, form, HTTP_ACCEPT=BROWSER, REMOTE_ADDR="10.5.5.5")

    assert problem["code"] == "busy" and page["Retry-After"] == "2"
    assert_readable_page_of(page, problem)


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
