"""One /metrics page for every process of a service (prometheus-client's multiprocess mode, as under run_service).

Real processes write their metrics into one ``PROMETHEUS_MULTIPROC_DIR``; this process serves the
page from that directory, as a service's gunicorn worker does. A child that exits has its live
gauges (the consumer lag) dropped by run_service, as gunicorn's ``child_exit`` does for its workers:
a dead consumer's lag must not be reported as current for good.
"""

from __future__ import annotations

import subprocess

import pytest

from config.management.commands.run_service import Child, Command
from tests.config.test_metrics import ALL_DATABASES, scrape
from tests.support.processes import PYTHON, REPO, clean_env

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)

LAG = (("module", "orders"), ("partition", "0"), ("topic", "quire.catalog.events"))
APPLIED = (("handler", "orders.handlers.probe"), ("module", "orders"), ("outcome", "applied"))


def writer(applied: int, lag: int, *, exit_code: int = 0) -> list[str]:
    """argv of a process that counts ``applied`` events and reports ``lag``, as a consumer does, then exits."""
    script = (
        "import django, sys; django.setup()\n"
        "from messaging import metrics\n"
        f"metrics.EVENTS_HANDLED.labels('orders', 'orders.handlers.probe', 'applied').inc({applied})\n"
        f"metrics.CONSUMER_LAG.labels('orders', 'quire.catalog.events', '0').set({lag})\n"
        f"sys.exit({exit_code})\n"
    )
    return [PYTHON, "-c", script]


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    """A service's metrics directory, which this process's /metrics reads (its own memory does not count)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


def child_env(metrics_dir, tmp_path) -> dict[str, str]:
    return clean_env(
        DJANGO_SETTINGS_MODULE="config.settings",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        QUIRE_VAR_DIR=str(tmp_path / "var"),
    )


def test_one_page_adds_up_the_counters_of_every_process_and_shows_the_highest_lag(metrics_dir, tmp_path, client):
    for applied, lag in ((3, 5), (4, 9)):
        subprocess.run(writer(applied, lag), env=child_env(metrics_dir, tmp_path), cwd=REPO, check=True, timeout=60)

    samples = scrape(client)

    assert samples["quire_events_handled_total"][APPLIED] == 7
    assert samples["quire_consumer_lag"][LAG] == 9


def test_run_service_drops_the_lag_of_a_child_that_died(metrics_dir, tmp_path, client):
    command = Command()
    command.stopping, command.max_restarts, command.stop_timeout = None, 0, 5.0
    consumer = Child("consumer", writer(2, 11, exit_code=3), env=child_env(metrics_dir, tmp_path))
    command.children = [consumer]
    consumer.start()

    assert command.supervise() == "consumer"  # it died, and with --max-restarts 0 the service gives up

    samples = scrape(client)
    assert samples["quire_events_handled_total"][APPLIED] == 2  # what it did stays counted
    assert LAG not in samples.get("quire_consumer_lag", {})  # what it reported as current went with it
