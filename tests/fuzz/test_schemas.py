"""The fuzzing stage: schemathesis over each module's OpenAPI schema, on the one-process shop.

Each module's schema is fuzzed twice, anonymously and with a customer's token, with every check
that applies (server errors, response schema, documented status codes and content types,
headers, rejection of schema-violating input, authentication, unsupported methods, use after
free, resource availability), a fixed seed and a bounded number of examples per operation so the
stage fits CI (``QUIRE_FUZZ_MAX_EXAMPLES``, default 75: about 2.5 minutes on a quiet 2-core machine,
100 took just over 3; the figures of a run are in docs/operations.md). The fuzzed shop runs
without rate limits (tests/fuzz/settings.py). The phases are ``QUIRE_FUZZ_PHASES``
(default examples, fuzzing and stateful); ``coverage`` adds schemathesis's boundary-value
enumeration, about 900 more requests per schema and not bounded by the example count, so a longer
run than CI's budget (``QUIRE_FUZZ_PHASES=examples,coverage,fuzzing,stateful``: 0 failures too).

Not applied: ``positive_data_acceptance``,
which expects every schema-valid request to succeed, while part of what the shop checks cannot be
said in JSON Schema (cursors are opaque, card numbers carry a check digit, a price range needs
min <= max, a book id must exist, passwords must not be common); those rules have tests of their own.

A failure prints schemathesis's report, with a ``curl`` line that reproduces it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e.harness import one_process_shop
from tests.support.processes import PYTHON, REPO

pytestmark = pytest.mark.fuzz

MODULES = ("accounts", "catalog", "orders", "recommendations")
SEED = 20261202
MAX_EXAMPLES = int(os.environ.get("QUIRE_FUZZ_MAX_EXAMPLES", "75"))
PHASES = os.environ.get("QUIRE_FUZZ_PHASES", "examples,fuzzing,stateful")
SCHEMATHESIS = [PYTHON, "-m", "schemathesis.cli"]


@pytest.fixture(scope="module")
def shop():
    # The shop's own settings but a fast password hash: accounts' operations hash on every sign-in,
    # registration and password change, which otherwise took most of the stage's time.
    with one_process_shop({"DJANGO_SETTINGS_MODULE": "tests.fuzz.settings"}) as running:
        yield running


@pytest.fixture(scope="module")
def customer_token(shop) -> str:
    client = shop.client()
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    password = "fuzz-Pa55word-long!"
    # Registration answers 202 alike for a new and a taken email (no enumeration): then sign in.
    response = client.post("/api/accounts/register/", {"email": email, "password": password, "name": "Fuzz"})
    assert response.status == 202, response
    response = client.post("/api/accounts/token/", {"email": email, "password": password})
    assert response.status == 200, response
    return response.json()["access"]


def fuzz(shop, module: str, headers: list[str]) -> tuple[int, str]:
    command = [
        *SCHEMATHESIS,
        "run",
        f"{shop.base_url}/api/{module}/schema/",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        PHASES,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        *[part for header in headers for part in ("--header", header)],
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr + f"\nseconds={time.monotonic() - started:.1f}"


def summary(output: str) -> str:
    operations = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    failures = re.search(r"(\d+) unique failures?", output)
    seconds = re.search(r"seconds=([0-9.]+)", output)
    return (
        f"operations={operations.group(1) if operations else '?'} "
        f"examples={cases.group(1) if cases else '?'} failures={failures.group(1) if failures else 0} "
        f"in {seconds.group(1) if seconds else '?'} s"
    )


@pytest.mark.parametrize("auth", ["anonymous", "customer"])
@pytest.mark.parametrize("module", MODULES)
def test_the_schema_holds_under_fuzzing(shop, customer_token, module, auth):
    headers = [f"Authorization: Bearer {customer_token}"] if auth == "customer" else []

    status, output = fuzz(shop, module, headers)

    print(f"\nfuzz {module} ({auth}): {summary(output)}", file=sys.stderr)
    assert status == 0, output[-20000:]
