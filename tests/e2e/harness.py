"""What the end-to-end suite drives: a running shop, reached over real HTTP only.

Three topologies, one interface (:class:`Shop`):

- ``one_process``: ``manage.py run_service`` with ``SERVICE=all``, SQLite files in a
  temporary directory, events in-process;
- ``services``: ``scripts/services.sh start`` (four services on PostgreSQL and Kafka behind
  the nginx gateway) on free ports, with freshly created databases and a topic prefix of
  its own, torn down (databases dropped, topics deleted) afterwards;
- ``grouped``: the same script with ``QUIRE_SERVICES="accounts+catalog+orders recommendations"``,
  two processes: the first module to leave a monolith, and the rest still together.

Processes, servers, HTTP and waiting come from :mod:`tests.support`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import kafka, postgres
from tests.support.http import Client, wait_answering
from tests.support.processes import PYTHON, REPO, clean_env, free_port, run, spawn, stop
from tests.support.waiting import wait_until

MODULES = ("accounts", "catalog", "orders", "recommendations")
STAFF_USERNAME = "e2e-staff"
STAFF_PASSWORD = "e2e-staff-Pa55word!"  # a throw-away shop's staff account
START_TIMEOUT = float(os.environ.get("QUIRE_E2E_START_TIMEOUT", "180"))
# How long an asynchronous effect (an event crossing modules) may take to show.
EVENTUAL_TIMEOUT = float(os.environ.get("QUIRE_E2E_EVENT_TIMEOUT", "30"))


# --- the shop -----------------------------------------------------------------------------------


@dataclass
class Shop:
    """A running shop: where it answers, and how to do what only an operator can."""

    topology: str
    base_url: str
    #: Runs ``manage.py <args>`` as the process that serves ``module`` (its env, its database).
    manage: Callable[..., subprocess.CompletedProcess]
    #: The process (its ``+`` name, as QUIRE_SERVICES spells it) that serves each module, behind a gateway.
    process_of: dict[str, str] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    _staff_client: Client | None = None
    _staff_processes: set[str] = field(default_factory=set)

    wait_until = staticmethod(functools.partial(wait_until, timeout=EVENTUAL_TIMEOUT))

    def client(self) -> Client:
        return Client(self.base_url, csrf_cookie=self.csrf_cookie_for)

    def admin_prefix(self, module: str) -> str:
        return "/admin/" if self.topology == "one_process" else f"/admin/{module}/"

    def csrf_cookie_for(self, path: str) -> str:
        if self.topology == "one_process":
            return "csrftoken"
        match = re.match(r"^/(?:api|admin)/([a-z]+)/", path)
        if not match:
            return "csrftoken"
        # A process names its cookies after the set it serves (one module, or accounts+catalog+orders).
        return f"quire_{self.process_of.get(match.group(1), match.group(1))}_csrftoken"

    def staff(self, module: str) -> Client:
        """A client signed in as the shop's staff superuser, for the admin and staff API of ``module``.

        Staff are users of accounts only: created there once (``createsuperuser --noinput``), signed in
        once at accounts' admin, and every other admin accepts the staff token that sign-in set
        (web/staff.py). Opening ``module``'s admin once makes that process's session, which its
        staff API then accepts.
        """
        if self._staff_client is None:
            self.manage(
                "accounts",
                "createsuperuser",
                "--noinput",
                env={
                    "DJANGO_SUPERUSER_USERNAME": STAFF_USERNAME,
                    "DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD,
                    "DJANGO_SUPERUSER_EMAIL": "staff@e2e.example",
                },
                ok_if=lambda result: "already taken" in result.stderr,
            )
            self._staff_client = self.client()
            self.admin_login(self._staff_client, "accounts")
        process = self.process_of.get(module, module)
        if process not in self._staff_processes:
            index = self._staff_client.get(self.admin_prefix(module), headers={"Accept": "text/html"})
            assert index.status == 200, f"{module}'s admin refused the staff token: {index!r}"
            self._staff_processes.add(process)
        return self._staff_client

    def admin_login(
        self, client: Client, module: str, username: str = STAFF_USERNAME, password: str = STAFF_PASSWORD
    ) -> None:
        admin_login(
            client,
            self.admin_prefix(module),
            self.csrf_cookie_for(self.admin_prefix(module)),
            username=username,
            password=password,
        )


def admin_login(
    client: Client,
    admin_prefix: str,
    csrf_cookie: str,
    *,
    username: str = STAFF_USERNAME,
    password: str = STAFF_PASSWORD,
) -> None:
    login = admin_prefix + "login/"
    page = client.get(login, headers={"Accept": "text/html"})
    assert page.status == 200, f"admin login page: {page!r}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token and client.cookie(csrf_cookie), f"no CSRF token on {login} (cookie {csrf_cookie})"
    response = client.request(
        "POST",
        login,
        form={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1),
            "next": admin_prefix,
        },
        headers={"Accept": "text/html", "Referer": client.url(login)},
    )
    assert response.status == 302, f"admin login failed: {response!r}"
    assert not response.headers.get("Location", "").startswith(login), "admin login refused the staff user"


# --- the topologies ----------------------------------------------------------------------------


def one_process_env(workdir: Path) -> dict[str, str]:
    """The environment of ``run_service`` with every module, on SQLite files in ``workdir``, events in-process."""
    return clean_env(
        SERVICE="all",
        EVENT_TRANSPORT="inprocess",
        LOG_FORMAT="json",  # as in production; tests/e2e/test_logs.py reads the lines
        QUIRE_VAR_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'default.sqlite3'}",
        **{f"{m.upper()}_DATABASE_URL": f"sqlite:///{workdir / (m + '.sqlite3')}" for m in MODULES},
    )


@contextlib.contextmanager
def one_process_shop(extra_env: dict[str, str] | None = None) -> Iterator[Shop]:
    """``run_service`` with SERVICE=all on SQLite in a temporary directory, events in-process.

    ``extra_env`` adds to (or overrides) its environment, e.g. tests/fuzz's settings module.
    """
    workdir = Path(tempfile.mkdtemp(prefix="quire-e2e-one-"))
    env = {**one_process_env(workdir), **(extra_env or {})}
    port = free_port()
    log = workdir / "shop.log"

    def manage(module: str, *args: str, env: dict[str, str] | None = None, ok_if=None):
        return run([PYTHON, "manage.py", *args], {**base_env, **(env or {})}, timeout=START_TIMEOUT, ok_if=ok_if)

    base_env = env
    manage("all", "migrate", "--noinput", "--verbosity", "0")
    process = spawn([PYTHON, "manage.py", "run_service", "--port", str(port), "--max-restarts", "0"], env=env, log=log)
    try:
        wait_answering(f"http://127.0.0.1:{port}/api/", timeout=START_TIMEOUT, process=process, log=log)
        yield Shop("one_process", f"http://127.0.0.1:{port}", manage, logs=[log])
    finally:
        stop([process], timeout=40)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def services_shop(
    extra_env: Callable[[Path, dict[str, str]], dict[str, str]] | None = None,
    services: str = " ".join(MODULES),
    topology: str = "services",
) -> Iterator[Shop]:
    """``scripts/services.sh`` on free ports, fresh databases and its own Kafka topic prefix.

    ``services`` is QUIRE_SERVICES: each word one process, ``+`` joins modules.

    ``extra_env(workdir, env)`` may add to (or override) services.sh's environment, e.g. to run every
    process from the image (tests/deploy/test_image.py).
    """
    server, bootstrap = postgres.server_url(), kafka.bootstrap()
    run_id = uuid.uuid4().hex[:10]
    prefix = f"quire-e2e-{run_id}"
    workdir = Path(tempfile.mkdtemp(prefix="quire-e2e-services-"))
    ports = {module: free_port() for module in MODULES}
    gateway_port = free_port()
    with postgres.fresh_databases(server, {m: f"quire_e2e_{run_id}_{m}" for m in MODULES}) as urls:
        env = clean_env(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_TOPIC_PREFIX=prefix,
            QUIRE_SERVICES_DIR=str(workdir / "services"),
            QUIRE_VAR_DIR=str(workdir / "var"),
            STATIC_ROOT=str(workdir / "static"),
            QUIRE_SEED_DEMO="0",
            LOG_FORMAT="json",  # as in production; tests/e2e/test_logs.py reads the lines
            PORT=str(gateway_port),
            QUIRE_SERVICES=services,
            **{f"QUIRE_{m.upper()}_PORT": str(port) for m, port in ports.items()},
            **{f"{m.upper()}_DATABASE_URL": url for m, url in urls.items()},
        )
        if extra_env:
            env.update(extra_env(workdir, env))

        def manage(module: str, *args: str, env: dict[str, str] | None = None, ok_if=None):
            return run(
                ["bash", "scripts/services.sh", "manage", module, *args],
                {**base_env, **(env or {})},
                timeout=START_TIMEOUT,
                ok_if=ok_if,
            )

        base_env = env
        processes = services.split()
        logs = [workdir / "services" / f"{process}.log" for process in processes]
        process_of = {module: process for process in processes for module in process.split("+")}
        try:
            run(["bash", "scripts/services.sh", "start"], env, timeout=START_TIMEOUT)
            yield Shop(topology, f"http://127.0.0.1:{gateway_port}", manage, process_of=process_of, logs=logs)
        finally:
            subprocess.run(["bash", "scripts/services.sh", "stop"], env=env, timeout=120, cwd=REPO)
            kafka.delete_prefixed(bootstrap, prefix)
            shutil.rmtree(workdir, ignore_errors=True)


def grouped_shop() -> contextlib.AbstractContextManager[Shop]:
    """Two processes on PostgreSQL and Kafka: recommendations out, the rest together."""
    return services_shop(services="accounts+catalog+orders recommendations", topology="grouped")
