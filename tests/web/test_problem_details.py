"""Every API error is an RFC 9457 problem-details body, never HTML or a stack trace."""

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.urls("tests.web.problem_urls"), pytest.mark.django_db(databases=["default"])]


def assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"] == "about:blank"
    return body


def test_an_unknown_api_path_is_a_404_problem():
    body = assert_problem(APIClient().get("/api/nowhere/at/all/"), 404)
    assert body["instance"] == "/api/nowhere/at/all/"


def test_a_wrong_method_is_a_405_problem():
    body = assert_problem(APIClient().delete("/api/"), 405)
    assert "DELETE" in body["detail"]


def test_validation_errors_name_every_field_at_fault():
    response = APIClient().post("/api/test/shelf/", {"name": "far too long", "books": [1, 0]}, format="json")

    body = assert_problem(response, 400)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "books[1]"}
    assert "name" in body["detail"]
    assert "books[1]" in body["detail"]
    assert all(error["message"] for error in body["errors"])


def test_malformed_json_is_a_400_problem():
    response = APIClient().post("/api/test/shelf/", "{not json", content_type="application/json")
    assert "JSON parse error" in assert_problem(response, 400)["detail"]


def test_an_unhandled_error_is_a_500_problem_without_a_trace(settings):
    settings.DEBUG = True  # even in development, the API never shows a stack trace

    response = APIClient().get("/api/test/explode/")

    body = assert_problem(response, 500)
    assert "ZeroDivisionError" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["detail"] == "The server failed to handle this request."


def test_unauthenticated_writes_are_401_or_403_problems():
    response = APIClient().post("/api/", {})
    assert response.status_code in (401, 403, 405)
    assert response["Content-Type"].startswith("application/problem+json")


def test_the_admin_still_speaks_html():
    response = APIClient().get("/admin/login/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
