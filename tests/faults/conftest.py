"""Fixtures of the fault drills: the shared servers, a JWT key pair, split shops and a private broker."""

from __future__ import annotations

import shutil

import pytest

from tests.faults.harness import Infra, SplitShop
from tests.support.kafka import PrivateKafka
from tests.support.postgres import PrivatePostgres
from tests.support.processes import tail
from tests.support.tokens import JwtKeys

SHOPS = pytest.StashKey[list]()
BROKERS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def infra() -> Infra:
    return Infra.shared()


@pytest.fixture(scope="session")
def jwt_keys(tmp_path_factory) -> JwtKeys:
    return JwtKeys.create(tmp_path_factory.mktemp("faults-keys"))


@pytest.fixture
def make_shop(request, infra, jwt_keys, tmp_path):
    """``make_shop(kafka=None, database=None, relay_client=None)``: a new :class:`SplitShop` (fresh databases, own
    topic prefix).

    Torn down after. ``kafka`` / ``database`` name a private broker / PostgreSQL server instead of the shared ones;
    ``relay_client`` the relays' Kafka client (MESSAGING_RELAY_CLIENT) instead of the default.
    """
    shops: list[SplitShop] = request.node.stash.setdefault(SHOPS, [])

    def make(*, kafka: str | None = None, database: str | None = None, relay_client: str | None = None) -> SplitShop:
        workdir = tmp_path / f"shop{len(shops)}"
        shop = SplitShop(
            infra=infra, keys=jwt_keys, workdir=workdir, kafka=kafka, database=database, relay_client=relay_client
        )
        shops.append(shop)
        shop.create()
        return shop

    yield make
    for shop in shops:
        shop.close()


@pytest.fixture
def private_kafka(request, tmp_path_factory) -> PrivateKafka:
    """A broker of this test's own, which it may stop without disturbing anyone; stopped and deleted after.

    Request it before ``make_shop`` so that it outlives the shops on it (fixtures end in reverse order).
    """
    broker = PrivateKafka(tmp_path_factory.mktemp("faults-kafka"))
    request.node.stash.setdefault(BROKERS, []).append(broker)
    with broker.running():
        yield broker


@pytest.fixture
def private_postgres(request, tmp_path_factory) -> PrivatePostgres:
    """A PostgreSQL server of this test's own, which it may crash; stopped and deleted after.

    Request it before ``make_shop`` so that it outlives the shops on it.
    """
    state_dir = tmp_path_factory.mktemp("faults-postgres")
    server = PrivatePostgres(state_dir)
    request.node.stash.setdefault(BROKERS, []).append(server)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed drill shows the end of every process's log (and the private broker's)."""
    report = yield
    if report.failed and call.when == "call":
        for shop in item.stash.get(SHOPS, []):
            for log in shop.logs():
                report.sections.append((f"{shop.prefix} {log.name}", tail(log, 30)))
        for server in item.stash.get(BROKERS, []):
            name = f"private broker {server.bootstrap}" if hasattr(server, "bootstrap") else "private PostgreSQL"
            report.sections.append((name, server.log_tail()))
    return report


def pytest_terminal_summary(terminalreporter):
    """The figures a drill recorded (``record_property("drill figures", ...)``), at the end of the run.

    A stage that runs without ``-s`` (make test's PostgreSQL and Kafka stage) shows them too, passed or failed.
    """
    figures = [
        (report.nodeid, value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, value in report.user_properties
        if name == "drill figures"
    ]
    if figures:
        terminalreporter.section("fault drill figures")
        for nodeid, value in figures:
            terminalreporter.write_line(f"{nodeid}: {value}")
