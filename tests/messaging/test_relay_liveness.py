"""A relay that cannot do its job says so and stops; one that can keeps its heartbeat fresh.

The relay's loop retries a failing round with backoff (a broker or database away for a while is
normal), but a database connection it cannot regain is not something it heals by itself: after
``RELAY_STALL_EXIT_SECONDS`` of failing rounds it raises ``RelayStalled`` and ``run_relay`` exits
non-zero, so that its supervisor restarts it. Its heartbeat file (mtime = last successful round)
is what ``check_heartbeat`` (a Kubernetes exec probe) and ``run_service`` read.
"""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from config.management.commands.run_service import Child
from messaging.kafka.liveness import heartbeat_age
from messaging.kafka.relay import OutboxRelay, RelayStalled
from tests.support.databases import database_lost
from tests.support.processes import free_port
from tests.support.waiting import wait_until

STALL = 1.5


@pytest.fixture
def orders_database_lost():
    """The orders connection pointed at a database that cannot be reached, as after losing it for good."""
    with database_lost("orders"):
        yield


@pytest.mark.django_db(databases=["orders"])
def test_a_relay_that_cannot_regain_its_database_stops_with_relay_stalled(orders_database_lost, tmp_path):
    heartbeat = tmp_path / "relay.heartbeat"
    relay = OutboxRelay(["orders"], stall_exit_seconds=STALL, heartbeat_file=str(heartbeat), ensure_topics=False)
    started = time.monotonic()

    with pytest.raises(RelayStalled, match=r"MESSAGING_RELAY_STALL_EXIT_SECONDS=1\.5"):
        relay.run()

    took = time.monotonic() - started
    assert STALL < took < STALL + 5, took  # the stall limit plus at most one backoff
    assert relay.stats.failures >= 2
    assert relay.status.startswith("failing")
    # Its heartbeat was written at the start and never since: it ages like the relay's progress.
    assert heartbeat_age(heartbeat) >= STALL
    with pytest.raises(CommandError, match="stuck"):
        call_command("check_heartbeat", "relay", "--file", str(heartbeat), "--max-age", "1")
    relay.close()


@pytest.mark.django_db(databases=["orders"])
def test_run_relay_exits_non_zero_when_stalled(orders_database_lost, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{free_port()}"]
    settings.MESSAGING = {**settings.MESSAGING, "TRANSPORT": "kafka", "RELAY_STALL_EXIT_SECONDS": STALL}

    with pytest.raises(CommandError, match="relay stalled: no successful round"):
        call_command("run_relay", "--module", "orders", "--progress-interval", "60", stdout=io.StringIO())
    # Its watchdog ends with it (left running, it would end this process once the limit passed).
    wait_until(
        lambda: not any(thread.name == "relay-watchdog" for thread in threading.enumerate()),
        timeout=5,
        message="the relay's watchdog thread ended",
    )


@pytest.mark.django_db(transaction=True, databases=["orders"])
def test_an_idle_relay_keeps_its_heartbeat_fresh(tmp_path):
    heartbeat = tmp_path / "relay.heartbeat"
    relay = OutboxRelay(["orders"], heartbeat_file=str(heartbeat), poll_interval=0.1, ensure_topics=False)
    thread = threading.Thread(target=lambda: (relay.run(), connections.close_all()), daemon=True)
    thread.start()
    try:
        wait_until(heartbeat.exists, timeout=10, message="the heartbeat file written")
        first = heartbeat.stat().st_mtime
        # Nothing to publish, every round a success: the heartbeat moves on by itself.
        wait_until(lambda: heartbeat.stat().st_mtime > first + 1, timeout=10, message="the heartbeat advancing")
        assert relay.status == "relaying"
        call_command("check_heartbeat", "relay", "--file", str(heartbeat), "--max-age", "5", stdout=io.StringIO())
    finally:
        relay.stop()
        thread.join(timeout=10)
        relay.close()
    assert not thread.is_alive()


def test_check_heartbeat_refuses_a_missing_file_and_an_unset_one(tmp_path, settings):
    with pytest.raises(CommandError, match="no heartbeat at"):
        call_command("check_heartbeat", "consumer", "--file", str(tmp_path / "none"))
    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_HEARTBEAT_FILE": ""}
    with pytest.raises(CommandError, match="set MESSAGING_CONSUMER_HEARTBEAT_FILE"):
        call_command("check_heartbeat", "consumer")


def test_run_service_sees_a_child_stuck_only_past_its_limit_and_after_running_that_long(tmp_path):
    heartbeat = tmp_path / "beat"
    child = Child("relay", ["true"], heartbeat=str(heartbeat), heartbeat_limit=10.0)
    now = time.monotonic()

    child.started_at = now - 5
    assert child.stuck_for(now) is None  # too young to judge (a heartbeat of its previous life may linger)
    child.started_at = now - 60
    assert child.stuck_for(now) == pytest.approx(60)  # never wrote one
    heartbeat.touch()
    assert child.stuck_for(now) is None
    os.utime(heartbeat, (time.time() - 30, time.time() - 30))
    assert child.stuck_for(now) == pytest.approx(30, abs=1)
