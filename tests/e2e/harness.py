"""What the end-to-end suite drives: a running shop, reached over real HTTP only.

Two topologies, one interface (:class:`Shop`):

- ``one_process``: ``manage.py run_service`` with ``SERVICE=all``, SQLite files in a
  temporary directory, events in-process;
- ``services``: ``scripts/services.sh start`` (four services on PostgreSQL and Kafka behind
  the nginx gateway) on free ports, with freshly created databases and a topic prefix of
  its own, torn down (databases dropped, topics deleted) afterwards.

Standard library only (urllib, http.cookiejar): the suite needs nothing the shop does not.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MODULES = ("accounts", "catalog", "orders", "recommendations")
STAFF_USERNAME = "e2e-staff"
STAFF_PASSWORD = "e2e-staff-Pa55word!"  # a throw-away shop's staff account
START_TIMEOUT = float(os.environ.get("QUIRE_E2E_START_TIMEOUT", "180"))
# How long an asynchronous effect (an event crossing modules) may take to show.
EVENTUAL_TIMEOUT = float(os.environ.get("QUIRE_E2E_EVENT_TIMEOUT", "30"))


class TimedOut(AssertionError):
    pass


def wait_until(predicate: Callable[[], Any], timeout: float = EVENTUAL_TIMEOUT, interval: float = 0.1, what: str = ""):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (fails).

    The last value and the last exception are in the failure message, so a test that times out
    says what it saw.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    error: BaseException | None = None
    while True:
        try:
            last = predicate()
            error = None
            if last:
                return last
        except AssertionError as raised:
            error = raised
        if time.monotonic() >= deadline:
            detail = f"last error: {error}" if error else f"last value: {last!r}"
            raise TimedOut(f"not true within {timeout:.0f}s: {what or predicate!r} ({detail})")
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)


# --- HTTP ---------------------------------------------------------------------------------------


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


# --- the shop -----------------------------------------------------------------------------------


@dataclass
class Shop:
    """A running shop: where it answers, and how to do what only an operator can."""

    topology: str
    base_url: str
    #: Runs ``manage.py <args>`` as the process that serves ``module`` (its env, its database).
    manage: Callable[..., subprocess.CompletedProcess]
    logs: list[Path] = field(default_factory=list)
    _staff: dict[str, Client] = field(default_factory=dict)

    wait_until = staticmethod(wait_until)

    def client(self) -> Client:
        return Client(self.base_url, csrf_cookie=self.csrf_cookie_for)

    def admin_prefix(self, module: str) -> str:
        return "/admin/" if self.topology == "one_process" else f"/admin/{module}/"

    def csrf_cookie_for(self, path: str) -> str:
        if self.topology == "one_process":
            return "csrftoken"
        match = re.match(r"^/(?:api|admin)/([a-z]+)/", path)
        return f"quire_{match.group(1)}_csrftoken" if match else "csrftoken"

    def staff(self, module: str) -> Client:
        """A client signed in through ``module``'s admin login form as a staff user.

        Staff accounts are Django users of each service's own database, so the user is created
        (``createsuperuser --noinput``) in the process that serves ``module``.
        """
        if module not in self._staff:
            self.manage(
                module,
                "createsuperuser",
                "--noinput",
                env={
                    "DJANGO_SUPERUSER_USERNAME": STAFF_USERNAME,
                    "DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD,
                    "DJANGO_SUPERUSER_EMAIL": "staff@e2e.example",
                },
                ok_if=lambda result: "already taken" in result.stderr,
            )
            client = self.client()
            admin_login(client, self.admin_prefix(module), self.csrf_cookie_for(self.admin_prefix(module)))
            self._staff[module] = client
        return self._staff[module]


def admin_login(client: Client, admin_prefix: str, csrf_cookie: str) -> None:
    login = admin_prefix + "login/"
    page = client.get(login, headers={"Accept": "text/html"})
    assert page.status == 200, f"admin login page: {page!r}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token and client.cookie(csrf_cookie), f"no CSRF token on {login} (cookie {csrf_cookie})"
    response = client.request(
        "POST",
        login,
        form={
            "username": STAFF_USERNAME,
            "password": STAFF_PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
            "next": admin_prefix,
        },
        headers={"Accept": "text/html", "Referer": client.url(login)},
    )
    assert response.status == 302, f"admin login failed: {response!r}"
    assert not response.headers.get("Location", "").startswith(login), "admin login refused the staff user"


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(**overrides: str) -> dict[str, str]:
    """The environment a shop process gets: ours minus Quire's own settings, plus ``overrides``."""
    quire_names = re.compile(
        r"^(SERVICE|EVENT_TRANSPORT|KAFKA_TOPIC_PREFIX|QUIRE_VAR_DIR|STATIC_ROOT|DEBUG|SECRET_KEY|"
        r"(\w+_)?DATABASE_URL|JWT_\w+|DJANGO_SETTINGS_MODULE|PORT|QUIRE_SERVICES_DIR|"
        # the services' own ports; the servers' (QUIRE_PG_PORT, QUIRE_KAFKA_PORT) pass through
        r"QUIRE_(ACCOUNTS|CATALOG|ORDERS|RECOMMENDATIONS)_PORT)$"
    )
    env = {name: value for name, value in os.environ.items() if not quire_names.match(name)}
    env.update(overrides)
    return env


def _run(argv: list[str], env: dict[str, str], *, timeout: float = START_TIMEOUT, ok_if=None):
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 and not (ok_if and ok_if(result)):
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def _wait_http(url: str, process: subprocess.Popen | None, log: Path) -> None:
    def answers() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the shop exited with {process.returncode} during start:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_until(answers, timeout=START_TIMEOUT, what=f"{url} answers")


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


@contextlib.contextmanager
def one_process_shop() -> Iterator[Shop]:
    """``run_service`` with SERVICE=all on SQLite in a temporary directory, events in-process."""
    workdir = Path(tempfile.mkdtemp(prefix="quire-e2e-one-"))
    env = _clean_env(
        SERVICE="all",
        EVENT_TRANSPORT="inprocess",
        QUIRE_VAR_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'default.sqlite3'}",
        **{f"{m.upper()}_DATABASE_URL": f"sqlite:///{workdir / (m + '.sqlite3')}" for m in MODULES},
    )
    port = free_port()
    log = workdir / "shop.log"

    def manage(module: str, *args: str, env: dict[str, str] | None = None, ok_if=None):
        return _run([PYTHON, "manage.py", *args], {**base_env, **(env or {})}, ok_if=ok_if)

    base_env = env
    manage("all", "migrate", "--noinput", "--verbosity", "0")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [PYTHON, "manage.py", "run_service", "--port", str(port), "--max-restarts", "0"],
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/", process, log)
        yield Shop("one_process", f"http://127.0.0.1:{port}", manage, logs=[log])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _dev_env(script: str) -> dict[str, str]:
    """The ``export NAME=value`` lines a scripts/dev script prints for its server."""
    output = _run(["bash", f"scripts/dev/{script}", "env"], dict(os.environ)).stdout
    return {m.group(1): m.group(2).strip("'\"") for m in re.finditer(r"^export (\w+)=(.*)$", output, re.M)}


@contextlib.contextmanager
def fresh_databases(admin_url: str, run_id: str) -> Iterator[dict[str, str]]:
    """One new PostgreSQL database per module on the server of ``admin_url``; dropped afterwards."""
    import psycopg2

    parts = urllib.parse.urlsplit(admin_url)
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        dbname="postgres",
    )
    connection.autocommit = True
    names = {module: f"quire_e2e_{run_id}_{module}" for module in MODULES}
    try:
        with connection.cursor() as cursor:
            for name in names.values():
                cursor.execute(f'CREATE DATABASE "{name}"')
        yield {module: urllib.parse.urlunsplit(parts._replace(path=f"/{name}")) for module, name in names.items()}
    finally:
        with connection.cursor() as cursor:
            for name in names.values():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def delete_topics(bootstrap_servers: str, prefix: str) -> None:
    """Best effort: a test run's topics are of no use after it."""
    try:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), request_timeout_ms=10_000)
        try:
            topics = [topic for topic in admin.list_topics() if topic.startswith(prefix + ".")]
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()
    except Exception as error:  # the broker may be gone already; the run's result stands
        print(f"e2e: could not delete topics {prefix}.*: {error!r}", file=sys.stderr)


@contextlib.contextmanager
def services_shop() -> Iterator[Shop]:
    """``scripts/services.sh`` on free ports, fresh databases and its own Kafka topic prefix."""
    for script in ("postgres.sh", "kafka.sh"):
        _run(["bash", f"scripts/dev/{script}", "start"], dict(os.environ))
    infra = {**_dev_env("postgres.sh"), **_dev_env("kafka.sh")}
    infra.update({name: os.environ[name] for name in infra if os.environ.get(name)})
    run_id = uuid.uuid4().hex[:10]
    prefix = f"quire-e2e-{run_id}"
    workdir = Path(tempfile.mkdtemp(prefix="quire-e2e-services-"))
    ports = {module: free_port() for module in MODULES}
    gateway_port = free_port()
    with fresh_databases(infra["DATABASE_URL"], run_id) as urls:
        env = _clean_env(
            KAFKA_BOOTSTRAP_SERVERS=infra["KAFKA_BOOTSTRAP_SERVERS"],
            KAFKA_TOPIC_PREFIX=prefix,
            QUIRE_SERVICES_DIR=str(workdir / "services"),
            QUIRE_VAR_DIR=str(workdir / "var"),
            STATIC_ROOT=str(workdir / "static"),
            QUIRE_SEED_DEMO="0",
            PORT=str(gateway_port),
            **{f"QUIRE_{m.upper()}_PORT": str(port) for m, port in ports.items()},
            **{f"{m.upper()}_DATABASE_URL": url for m, url in urls.items()},
        )

        def manage(module: str, *args: str, env: dict[str, str] | None = None, ok_if=None):
            return _run(
                ["bash", "scripts/services.sh", "manage", module, *args], {**base_env, **(env or {})}, ok_if=ok_if
            )

        base_env = env
        logs = [workdir / "services" / f"{m}.log" for m in MODULES]
        try:
            _run(["bash", "scripts/services.sh", "start"], env)
            yield Shop("services", f"http://127.0.0.1:{gateway_port}", manage, logs=logs)
        finally:
            subprocess.run(["bash", "scripts/services.sh", "stop"], env=env, cwd=REPO, timeout=120)
            delete_topics(infra["KAFKA_BOOTSTRAP_SERVERS"], prefix)
            shutil.rmtree(workdir, ignore_errors=True)
