"""A consumer that cannot do its job says so and stops; one that can keeps its heartbeat fresh.

An idle consumer asks the broker now and then whether its group leaves partitions without a
member (``GroupWatch``), and rebuilds its client if it holds nothing while they are unread; one
that makes no progress for ``CONSUMER_STALL_EXIT_SECONDS`` raises ``ConsumerStalled`` and
``run_consumer`` exits 1, or 70 when a consumer thread is stuck inside a call and cannot raise.
Its heartbeat file (mtime = the oldest progress of its consumers) is what ``check_heartbeat``,
``run_service`` and ``/health/ready/`` read. The stall itself, on a real broker, is in
tests/messaging/test_kafka_consumer_liveness.py.
"""

from __future__ import annotations

import io
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from messaging.kafka import liveness
from messaging.kafka.consumer import ConsumerStalled, ModuleConsumer
from messaging.kafka.liveness import WEDGED_EXIT_CODE, GroupWatch, Verdict, heartbeat_age
from messaging.management.commands.run_consumer import Command as RunConsumer
from tests.support.processes import PYTHON, REPO, clean_env, free_port
from tests.support.waiting import wait_until

HELD = frozenset({TopicPartition("quire.catalog.events", 0)})
UNOWNED = {TopicPartition("quire.catalog.events", 1), TopicPartition("quire.catalog.events", 2)}


class Clock:
    """time.monotonic() for GroupWatch, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Broker:
    """What unowned_partitions answers (state, unowned partitions, or an error), and how often it was asked."""

    def __init__(self, state: str = "Stable", unowned: set | None = None) -> None:
        self.state, self.unowned, self.error, self.asked = state, unowned or set(), None, 0

    def __call__(self, group, topics, bootstrap_servers):
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.state, set(self.unowned)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(liveness, "time", clock)
    return clock


@pytest.fixture
def broker(monkeypatch) -> Broker:
    broker = Broker()
    monkeypatch.setattr(liveness, "unowned_partitions", broker)
    return broker


def watch() -> GroupWatch:
    return GroupWatch("quire.orders", ["quire.catalog.events"], ["127.0.0.1:9092"], interval=5.0)


def test_before_its_first_check_an_idle_member_progresses_only_if_it_holds_partitions(clock, broker):
    group = watch()

    assert group.after_empty_poll(assigned=HELD, coordinator_known=True) == Verdict("consuming", progressed=True)
    clock.now += 4.9
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True) == Verdict()
    assert broker.asked == 0


def test_a_member_holding_nothing_while_partitions_have_no_member_is_rebuilt(clock, broker):
    group = watch()
    group.after_empty_poll(assigned=frozenset(), coordinator_known=True)
    broker.unowned = UNOWNED
    clock.now += 5.0

    verdict = group.after_empty_poll(assigned=frozenset(), coordinator_known=True)

    assert verdict == Verdict("rebuilding its Kafka client", rebuild=True)
    assert broker.asked == 1
    # The next empty poll starts a new idle stretch: no second rebuild before another interval.
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True) == Verdict()
    assert broker.asked == 1


def test_a_rebalancing_group_and_a_spare_member_are_not_stalls(clock, broker):
    group = watch()
    group.after_empty_poll(assigned=frozenset(), coordinator_known=True)
    broker.state, broker.unowned = "PreparingRebalance", UNOWNED
    clock.now += 5.0
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True) == Verdict(
        "group PreparingRebalance", progressed=True
    )

    broker.state, broker.unowned = "Stable", set()  # more members than partitions: this one has none to hold
    clock.now += 10.0
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True) == Verdict(
        "idle: spare member", progressed=True
    )


def test_a_healthy_group_is_asked_less_often_but_at_least_every_two_intervals(clock, broker):
    group = watch()
    group.after_empty_poll(assigned=HELD, coordinator_known=True)
    asked_at = []
    for _ in range(40):  # 20 s of empty polls, one every half second
        clock.now += 0.5
        before = broker.asked
        group.after_empty_poll(assigned=HELD, coordinator_known=True)
        if broker.asked > before:
            asked_at.append(clock.now - 1000.0)

    assert asked_at == [5.0, 15.0]  # after one interval, then two (the backoff's cap)


def test_a_broker_or_coordinator_out_of_reach_is_no_progress(clock, broker):
    group = watch()
    assert group.after_empty_poll(assigned=HELD, coordinator_known=False) == Verdict("Kafka unreachable")

    broker.error = KafkaConnectionError("refused")
    clock.now += 5.0
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True) == Verdict("Kafka unreachable")
    broker.error = None
    clock.now += 5.0  # asked again one interval later, not never
    assert group.after_empty_poll(assigned=frozenset(), coordinator_known=True).progressed


def test_a_rebuild_throws_the_client_away_and_is_counted(monkeypatch):
    consumer = ModuleConsumer("orders", bootstrap_servers=["127.0.0.1:9"], ensure_topics=False)
    consumer.group_watch = SimpleNamespace(after_empty_poll=lambda **_: Verdict("rebuilding", rebuild=True))
    connected = []
    monkeypatch.setattr(consumer, "_connect", lambda: connected.append(True) or True)
    before = REGISTRY.get_sample_value("quire_consumer_rebuilds_total", {"module": "orders"}) or 0.0

    consumer._watch_idle()

    assert consumer.stats.rebuilds == 1 and connected == [True]
    assert REGISTRY.get_sample_value("quire_consumer_rebuilds_total", {"module": "orders"}) == before + 1


def test_a_consumer_that_never_reaches_a_broker_raises_consumer_stalled(settings):
    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_STALL_EXIT_SECONDS": 1.0}
    consumer = ModuleConsumer(
        "orders",
        bootstrap_servers=[f"127.0.0.1:{free_port()}"],
        ensure_topics=False,
        consumer_overrides={"bootstrap_timeout_ms": 300},
    )
    started = time.monotonic()

    with pytest.raises(ConsumerStalled, match=r"MESSAGING_CONSUMER_STALL_EXIT_SECONDS=1\b"):
        consumer.run()

    assert 1.0 < time.monotonic() - started < 10
    assert consumer.status == "Kafka unreachable"


def consumer_env(tmp_path, **variables: str) -> dict[str, str]:
    """A run_consumer process on SQLite files, its broker a port nothing listens on."""
    return clean_env(
        DJANGO_SETTINGS_MODULE="config.settings",
        QUIRE_VAR_DIR=str(tmp_path),
        EVENT_TRANSPORT="kafka",
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        MESSAGING_CONSUMER_HEARTBEAT_FILE=str(tmp_path / "consumer.heartbeat"),
        **variables,
    )


def test_run_consumer_exits_1_when_a_consumer_stalls(tmp_path):
    result = subprocess.run(
        [PYTHON, "manage.py", "run_consumer", "--module", "orders"],
        env=consumer_env(tmp_path, MESSAGING_CONSUMER_STALL_EXIT_SECONDS="1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result
    assert "the orders consumer stopped on ConsumerStalled" in result.stderr
    assert "MESSAGING_CONSUMER_STALL_EXIT_SECONDS=1" in result.stderr


WEDGED = """
import threading, django
django.setup()
from django.core.management import call_command
from messaging.kafka.consumer import ModuleConsumer
from messaging.management.commands import run_consumer

run_consumer.WEDGED_GRACE_SECONDS = 0.5  # the drill's patience, not production's 15 s
ModuleConsumer.run = lambda self, **options: threading.Event().wait()  # a call that never returns
call_command("run_consumer", "--module", "orders")
"""


def test_run_consumer_exits_70_when_a_consumer_is_wedged_inside_a_call(tmp_path):
    result = subprocess.run(
        [PYTHON, "-c", WEDGED],
        env=consumer_env(tmp_path, MESSAGING_CONSUMER_STALL_EXIT_SECONDS="1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == WEDGED_EXIT_CODE, result
    assert "orders: consumer wedged, no progress for" in result.stderr
    assert f"consumer thread(s) did not stop: exiting with status {WEDGED_EXIT_CODE}" in result.stderr
    # Its heartbeat was written once, at the start, and aged since: what check_heartbeat would see.
    assert heartbeat_age(tmp_path / "consumer.heartbeat") >= 1


def test_the_heartbeat_follows_the_oldest_progress_of_the_consumers(settings, tmp_path):
    heartbeat = tmp_path / "consumer.heartbeat"
    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_HEARTBEAT_FILE": str(heartbeat)}
    busy = SimpleNamespace(module="orders", status="consuming", last_progress=time.monotonic())
    behind = SimpleNamespace(module="catalog", status="consuming", last_progress=time.monotonic() - 30)
    alive = [SimpleNamespace(is_alive=lambda: True)] * 2
    command = RunConsumer(stdout=io.StringIO(), stderr=io.StringIO())

    command._watch(None, [busy, behind], alive)
    assert 29 <= heartbeat_age(heartbeat) < 35  # the one behind sets it

    def advanced() -> bool:
        busy.last_progress = behind.last_progress = time.monotonic()
        command._watch(None, [busy, behind], alive)  # written at most once a second
        return heartbeat_age(heartbeat) < 1

    wait_until(advanced, timeout=10, message="the heartbeat following the consumers' progress")
    call_command("check_heartbeat", "consumer", "--max-age", "5", stdout=io.StringIO())


@pytest.mark.kafka
def test_an_idle_run_consumer_keeps_its_heartbeat_fresh_on_a_real_broker(tmp_path):
    from django.conf import settings as django_settings

    from tests.support.kafka import delete_prefixed

    servers = ",".join(django_settings.KAFKA_BOOTSTRAP_SERVERS)
    assert servers, "make test sets KAFKA_BOOTSTRAP_SERVERS for this stage"
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    heartbeat = tmp_path / "consumer.heartbeat"
    env = {**consumer_env(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": servers, "KAFKA_TOPIC_PREFIX": prefix}
    process = subprocess.Popen(
        [PYTHON, "manage.py", "run_consumer", "--module", "orders"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(heartbeat.exists, timeout=60, message="the heartbeat file written")
        first = heartbeat.stat().st_mtime
        # Nothing to consume, its group well: idle polls are progress, and the heartbeat moves on.
        wait_until(lambda: heartbeat.stat().st_mtime > first + 2, timeout=60, message="the heartbeat advancing")
        assert process.poll() is None
        assert heartbeat_age(heartbeat) < 5
    finally:
        process.terminate()
        process.wait(timeout=60)
        delete_prefixed(servers, prefix)
    assert process.returncode == 0
