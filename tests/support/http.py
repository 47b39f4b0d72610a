"""An HTTP client for driving a shop from the outside (standard library only), and waiting for it to answer.

A :class:`Client` is one user agent: its own cookies, optionally a bearer token, JSON in and
out, redirects not followed (a test looks at them). :func:`expect` is the usual step: "this
status, give me the body".
"""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import tail
from tests.support.waiting import wait_until


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<{self.status} {self.url} {self.text[:300]!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Client:
    """One user agent: its own cookies, optionally a bearer token; JSON in and out."""

    def __init__(self, base_url: str, *, csrf_cookie: Callable[[str], str] = lambda path: "csrftoken"):
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.token: str | None = None
        self.csrf_cookie = csrf_cookie
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        url = self.url(path)
        all_headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        if method not in ("GET", "HEAD", "OPTIONS"):
            csrf = self.cookie(self.csrf_cookie(urllib.parse.urlsplit(url).path))
            if csrf:
                all_headers.setdefault("X-CSRFToken", csrf)
                all_headers.setdefault("Referer", self.base_url + "/")
        req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout) as raw:
                return Response(raw.status, dict(raw.headers.items()), raw.read(), url)
        except urllib.error.HTTPError as raw:
            return Response(raw.code, dict(raw.headers.items()), raw.read(), url)

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Response:
        return self.request("POST", path, json_body=body if body is not None else {}, **kwargs)

    def patch(self, path: str, body: Any, **kwargs) -> Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs) -> Response:
        return self.request("PUT", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs) -> Response:
        return self.request("DELETE", path, **kwargs)


def expect(response: Response, *statuses: int) -> Any:
    """The JSON body of a response that must have one of ``statuses``; fails showing the body."""
    assert response.status in statuses, f"expected {statuses}, got {response!r}"
    return response.json()


def answers(url: str, timeout: float = 2) -> bool:
    """``url`` answers 200 now (no connection, an error status or a slow answer: False)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:  # urllib.error.URLError and HTTPError included
        return False


def wait_answering(url: str, *, timeout: float, process: subprocess.Popen, log: Path) -> None:
    """Wait until the server ``process`` started answers ``url``; fails at once, with its log, if it exits."""

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{url}'s server exited with {process.returncode} during start:\n{tail(log)}")
        return answers(url)

    wait_until(up, timeout=timeout, message=f"{url} answers")
