"""The ``shop`` fixture: the same tests against one process and against the services behind the gateway."""

from __future__ import annotations

import sys
import time

import pytest

from tests.e2e.harness import Shop, grouped_shop, one_process_shop, services_shop
from tests.support.processes import tail

TOPOLOGIES = {"one_process": one_process_shop, "services": services_shop, "grouped": grouped_shop}


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("one_process", marks=pytest.mark.e2e),
        pytest.param("services", marks=[pytest.mark.e2e, pytest.mark.postgres, pytest.mark.kafka]),
        pytest.param("grouped", marks=[pytest.mark.e2e, pytest.mark.postgres, pytest.mark.kafka]),
    ],
)
def shop(request) -> Shop:
    """A running shop, started once per topology for the whole session, reached over HTTP only."""
    started = time.monotonic()
    with TOPOLOGIES[request.param]() as running:
        print(
            f"\ne2e: {request.param} shop up in {time.monotonic() - started:.1f}s at {running.base_url}",
            file=sys.stderr,
        )
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed e2e test shows the end of the shop's logs: the other half of the story."""
    report = yield
    if report.failed and call.when == "call" and "shop" in item.fixturenames:
        shop = item.funcargs.get("shop")
        if isinstance(shop, Shop):
            for log in shop.logs:
                report.sections.append((f"shop log {log.name}", tail(log, 40)))
    return report
