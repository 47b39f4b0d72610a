"""A database that cannot serve is a 503 with Retry-After wherever the error is raised, never a 500.

The API's views are covered in tests/orders/test_database_down.py; here what reaches Django's own
handler (the admin, a middleware loading the session), and which server answers count as "busy"
(retry in a second) rather than "unavailable" (retry in a few).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client, RequestFactory
from rest_framework.views import APIView

from tests.support.databases import database_lost
from web.problems import problem_exception_handler


@pytest.fixture
def default_database_lost():
    """The `default` connection (sessions, staff) pointed at a database that cannot be reached."""
    with database_lost("default"):
        yield


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_admin_with_its_session_database_lost_answers_503_with_retry_after(default_database_lost):
    client = Client(raise_request_exception=False)
    client.cookies[settings.SESSION_COOKIE_NAME] = "s" * 32  # a signed-in browser: its session is read first

    response = client.get("/admin/", headers={"Accept": "text/html"})

    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body["instance"]) == (503, "database_unavailable", "/admin/")


class Driver(Exception):
    """What psycopg2 raises, reduced to the SQLSTATE Django's OperationalError is raised from."""

    def __init__(self, pgcode: str | None) -> None:
        super().__init__(pgcode)
        self.pgcode = pgcode


def answer_to(pgcode: str | None):
    try:
        raise OperationalError("the database refused") from Driver(pgcode)
    except OperationalError as error:
        request = RequestFactory().get("/api/orders/")
        return problem_exception_handler(error, {"request": request, "view": APIView()})


@pytest.mark.parametrize(
    ("pgcode", "code", "retry_after"),
    [
        (None, "database_unavailable", "5"),  # the connection failed or was lost
        ("57P03", "database_unavailable", "5"),  # cannot_connect_now: starting up (or in recovery)
        ("57P01", "database_unavailable", "5"),  # admin_shutdown
        ("08006", "database_unavailable", "5"),  # connection_failure
        ("40P01", "database_busy", "1"),  # deadlock_detected: this transaction, not the server
        ("40001", "database_busy", "1"),  # serialization_failure
    ],
)
def test_a_server_that_cannot_serve_now_is_unavailable_one_that_refused_a_transaction_is_busy(
    pgcode, code, retry_after
):
    response = answer_to(pgcode)

    assert response.status_code == 503
    assert (response.data["code"], response["Retry-After"]) == (code, retry_after)
