"""Every HTML page carries a Content-Security-Policy, and none of them needs an inline script to work."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db(databases=["default", "accounts", "catalog"])

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class _Scripts(HTMLParser):
    """The <script> elements a browser would run, and those written inline."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.inline = 0
        self._in_inline = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag != "script" or attributes.get("type") == "application/json":  # data, never run
            return
        if attributes.get("src"):
            self.sources.append(attributes["src"])
        else:
            self._in_inline = True

    def handle_data(self, data):
        if self._in_inline and data.strip():
            self.inline += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline = False


def staff_client() -> Client:
    get_user_model().objects.create_superuser("root", password="Root-Pa55word!")
    client = Client()
    client.login(username="root", password="Root-Pa55word!")
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/login/",
        "/admin/",
        "/admin/catalog/book/add/",
        "/api/catalog/books/",
        "/api/catalog/docs/",
        "/api-auth/login/",
    ],
)
def test_html_pages_carry_the_policy_and_run_no_inline_script(settings, path):
    client = Client() if path.endswith("/login/") else staff_client()  # staff signed in skip the login page
    response = client.get(path, HTTP_ACCEPT=BROWSER)

    assert response.status_code == 200, path
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in settings.CONTENT_SECURITY_POLICY  # no 'unsafe-inline' for scripts
    scripts = _Scripts()
    scripts.feed(response.content.decode())
    assert scripts.inline == 0, f"{path} runs an inline script, which the policy blocks"


def test_swagger_ui_loads_its_initializer_from_this_origin():
    page = _Scripts()
    page.feed(Client().get("/api/catalog/docs/").content.decode())
    initializer = next(src for src in page.sources if "script" in src)

    script = Client().get(initializer)

    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/catalog/schema/" in script.content.decode()


def test_json_answers_carry_no_policy_and_the_policy_can_be_switched_off(settings):
    assert "Content-Security-Policy" not in Client().get("/api/catalog/books/", HTTP_ACCEPT="application/json")
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in Client().get("/admin/login/")
