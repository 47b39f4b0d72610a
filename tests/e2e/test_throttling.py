"""Rate limits hold across processes: two web processes of one service share one count.

Each variant starts two ``run_service`` processes on one set of databases (SQLite files in the
one-process shop; one PostgreSQL database for two replicas of the accounts service) and signs in
through both: the limit is reached after exactly ``LIMIT`` attempts in all, whichever process
took them, one after another and all at once.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.harness import one_process_env
from tests.support import postgres
from tests.support.http import Client, expect, wait_answering
from tests.support.processes import PYTHON, clean_env, free_port, run, spawn, stop, tail
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

LIMIT = 6
PASSWORD = "correct-horse-battery-staple-9"
LIMITS = {
    "THROTTLE_SIGN_IN_RATE": f"{LIMIT}/hour",
    "THROTTLE_SIGN_IN_ACCOUNT_RATE": "",
    # The hashing bound is tested on its own (tests/web/test_throttling.py); here every sign-in may wait.
    "PASSWORD_HASH_WAIT_SECONDS": "120",
}


@contextlib.contextmanager
def two_processes(env: dict[str, str], workdir: Path) -> Iterator[list[Client]]:
    run([PYTHON, "manage.py", "migrate", "--noinput", "--verbosity", "0"], env, timeout=180)
    processes, clients = [], []
    try:
        for number in range(2):
            port, log = free_port(), workdir / f"web-{number}.log"
            argv = [PYTHON, "manage.py", "run_service", "--port", str(port), "--max-restarts", "0", "--no-expiry"]
            argv.append("--no-relay")  # the accounts replicas: their events are not what is tested
            processes.append((spawn(argv, env=env, log=log), log))
            clients.append(Client(f"http://127.0.0.1:{port}"))
        for (process, log), client in zip(processes, clients, strict=True):
            wait_answering(client.url("/api/accounts/"), timeout=120, process=process, log=log)
        yield clients
    except BaseException:
        for _, log in processes:
            print(tail(log))
        raise
    finally:
        stop([process for process, _ in processes], timeout=30)


def one_process_topology(workdir: Path):
    return contextlib.nullcontext(one_process_env(workdir) | LIMITS)


@contextlib.contextmanager
def accounts_service_on_postgres(workdir: Path):
    server = postgres.server_url()
    name = f"quire_throttle_{uuid.uuid4().hex[:10]}"
    with postgres.fresh_databases(server, {"accounts": name}) as urls:
        yield clean_env(
            SERVICE="accounts",
            EVENT_TRANSPORT="kafka",
            KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # never reached: --no-relay, and accounts consumes nothing
            QUIRE_VAR_DIR=str(workdir),
            DATABASE_URL=urls["accounts"],
            ACCOUNTS_DATABASE_URL=urls["accounts"],
            **LIMITS,
        )


TOPOLOGIES = {
    "one_process": pytest.param(one_process_topology, id="sqlite-two-processes"),
    "postgres": pytest.param(accounts_service_on_postgres, id="postgres-two-replicas", marks=pytest.mark.postgres),
}


@pytest.mark.parametrize("topology", TOPOLOGIES.values())
def test_the_sign_in_limit_is_one_count_across_two_processes(topology):
    with (
        tempfile.TemporaryDirectory(prefix="quire-throttle-") as tmp,
        topology(Path(tmp)) as env,
        two_processes(env, Path(tmp)) as (first, second),
    ):
        email = f"ada-{uuid.uuid4().hex[:8]}@e2e.example"
        expect(first.post("/api/accounts/register/", {"email": email, "password": PASSWORD, "name": "Ada"}), 202)
        # Start well inside an hour window, so that the count cannot restart halfway.
        wait_until(lambda: time.time() % 3600 < 3480, timeout=150, message="a fresh part of the hour window")

        # One after another, alternating processes: the first half of the allowance.
        statuses = [
            (first if number % 2 == 0 else second).post("/api/accounts/token/", {"email": email, "password": "no"})
            for number in range(LIMIT // 2)
        ]
        assert [response.status for response in statuses] == [401] * (LIMIT // 2)

        # The rest of the allowance and more, all at once, through both processes.
        def attempt(number: int):
            client = first if number % 2 == 0 else second
            return client.post("/api/accounts/token/", {"email": email, "password": PASSWORD}, timeout=120)

        with ThreadPoolExecutor(max_workers=8) as pool:
            burst = list(pool.map(attempt, range(12)))
        passed = [response for response in burst if response.status != 429]
        assert len(passed) == LIMIT - LIMIT // 2, [response.status for response in burst]
        assert all(response.status == 200 for response in passed), passed
        for client in (first, second):
            refused = client.post("/api/accounts/token/", {"email": email, "password": PASSWORD})
            assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1, refused
            assert refused.headers["Content-Type"].startswith("application/problem+json")
