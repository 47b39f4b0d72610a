"""A service's session and CSRF cookies go to its own /admin/<module>/ and /api/<module>/ paths only.

The unit test process serves every module with cookies at ``/``; the services topology's
settings are shown by starting Django with ``SERVICE=...`` in a subprocess, and the cookies
such a process writes by giving this one the same cookie settings. Through the gateway, with a
real cookie jar: tests/e2e/test_staff_identity.py.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tests.support.processes import settings_of

pytestmark = pytest.mark.django_db(databases=["default", "accounts"])

PASSWORD = "Staff-Pa55word!"


@pytest.mark.parametrize(
    ("service", "paths"),
    [
        ("catalog", ["/admin/catalog/", "/api/catalog/"]),
        (
            "accounts,catalog,orders",
            [
                "/admin/accounts/",
                "/admin/catalog/",
                "/admin/orders/",
                "/api/accounts/",
                "/api/catalog/",
                "/api/orders/",
            ],
        ),
    ],
)
def test_a_service_scopes_its_cookies_to_the_prefixes_it_serves(tmp_path, service, paths):
    names = ["COOKIE_PATHS", "SESSION_COOKIE_NAME", "SESSION_COOKIE_PATH", "CSRF_COOKIE_NAME", "CSRF_COOKIE_PATH"]
    values = settings_of(
        tmp_path, names, SERVICE=service, EVENT_TRANSPORT="kafka", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9"
    )

    assert values["COOKIE_PATHS"] == paths
    assert values["SESSION_COOKIE_PATH"] == values["CSRF_COOKIE_PATH"] == paths[0]
    name = service.replace(",", "+")
    assert (values["SESSION_COOKIE_NAME"], values["CSRF_COOKIE_NAME"]) == (
        f"quire_{name}_sessionid",
        f"quire_{name}_csrftoken",
    )


def test_the_one_process_shop_keeps_its_cookies_at_the_root():
    assert settings.COOKIE_PATHS == ["/"] and settings.SESSION_COOKIE_PATH == settings.CSRF_COOKIE_PATH == "/"


GROUPED = ["/admin/accounts/", "/admin/catalog/", "/api/accounts/", "/api/catalog/"]
AS_A_GROUPED_SERVICE = override_settings(
    COOKIE_PATHS=GROUPED,
    SESSION_COOKIE_PATH=GROUPED[0],
    CSRF_COOKIE_PATH=GROUPED[0],
    SESSION_COOKIE_NAME="quire_accounts+catalog_sessionid",
    CSRF_COOKIE_NAME="quire_accounts+catalog_csrftoken",
)


def set_cookies(response, name: str) -> dict[str, str]:
    """Path -> value of every Set-Cookie header of ``name`` (what the WSGI handler writes out)."""
    found = {}
    for morsel in response.cookies.values():
        if morsel.key == name:
            assert morsel["path"] not in found, f"{name} set twice for {morsel['path']}"
            found[morsel["path"]] = morsel.value
    return found


@AS_A_GROUPED_SERVICE
def test_session_and_csrf_cookies_are_set_renewed_and_deleted_under_every_own_path_and_no_other():
    User.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    client = Client()

    page = client.get("/admin/login/")
    csrf = set_cookies(page, "quire_accounts+catalog_csrftoken")
    assert sorted(csrf) == sorted(GROUPED) and len(set(csrf.values())) == 1

    signed_in = client.post("/admin/login/", {"username": "clerk", "password": PASSWORD, "next": "/admin/"})
    assert signed_in.status_code == 302
    session = set_cookies(signed_in, "quire_accounts+catalog_sessionid")
    assert sorted(session) == sorted(GROUPED) and len(set(session.values())) == 1
    assert all(morsel["httponly"] for morsel in signed_in.cookies.values() if morsel.key.endswith("_sessionid"))

    signed_out = client.post("/admin/logout/")
    deleted = [m for m in signed_out.cookies.values() if m.key == "quire_accounts+catalog_sessionid"]
    assert sorted(m["path"] for m in deleted) == sorted(GROUPED)
    assert all(m.value == "" and m["max-age"] == 0 for m in deleted)


def test_admin_messages_are_kept_in_the_session_not_in_a_cookie_at_the_root():
    User.objects.create_superuser("root", password=PASSWORD)
    client = Client()
    client.login(username="root", password=PASSWORD)

    response = client.post("/admin/auth/group/add/", {"name": "Clerks"})

    assert response.status_code == 302, response.content.decode()[:500]
    assert "messages" not in response.cookies  # Django's default storage would set one at Path=/
    assert "was added successfully" in client.get(response["Location"]).content.decode()
