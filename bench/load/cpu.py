"""CPU seconds of the shop's processes over a load run, by group (shop, gateway, PostgreSQL, Kafka).

A group is the process trees under some root processes (a ``run_service`` supervisor and so its
gunicorn master and workers, relay, consumer and periodic commands; nginx's master and workers;
PostgreSQL's postmaster and its backends; the Kafka JVM). A tree's CPU time is the user and system
time of each live process plus what each has collected from its ended children (``children_user``
and ``children_system``), so a gunicorn worker or a relay that exits during the run still counts,
in its parent. What a run used is the difference between two snapshots.

:class:`Sampler` takes a snapshot every ``interval`` seconds in a thread and keeps them, so the
plots can show the cores each group kept busy over time, and the run's total is last minus first.
"""

from __future__ import annotations

import contextlib
import csv
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: What a Quire process does, from its command line (the first match wins).
ROLES = (
    ("run_relay", "relay"),
    ("run_consumer", "consumer"),
    ("orders_resolve_pending", "sagas"),
    ("orders_expire_unpaid", "expiry"),
    ("run_service", "supervisor"),
    ("gunicorn", "web"),
)


def role_of(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    return next((role for needle, role in ROLES if needle in text), "other")


def tree_cpu(root: int, label: Callable[[psutil.Process], str] | None = None) -> dict[str, float]:
    """CPU seconds so far of the tree under pid ``root``, per label (one label ``""`` without ``label``)."""
    try:
        top = psutil.Process(root)
        processes = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    seconds: dict[str, float] = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            times = process.cpu_times()
            name = label(process) if label else ""
            used = times.user + times.system + times.children_user + times.children_system
            seconds[name] = seconds.get(name, 0.0) + used
    return seconds


def listener_pid(port: int) -> int | None:
    """The process that listens on TCP ``port`` (PostgreSQL's postmaster, Kafka's JVM), if any."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return connection.pid
    return None


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine used since boot (all cores), idle and iowait excluded."""
    times = psutil.cpu_times()._asdict()
    # guest time is counted in user time already (Linux /proc/stat)
    return sum(times.get(name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


@dataclass
class Group:
    """A named set of process trees; ``per_role`` splits the shop's time by what each process does."""

    name: str
    roots: Callable[[], Iterable[tuple[str, int]]]  # (service name, root pid), found again at each snapshot
    per_role: bool = False

    def snapshot(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for service, root in self.roots():

            def label(process: psutil.Process, service: str = service) -> str:
                return f"{service}:{role_of(process.cmdline())}" if self.per_role else self.name

            for key, value in tree_cpu(root, label).items():
                seconds[key] = seconds.get(key, 0.0) + value
        return seconds


@dataclass
class Sampler:
    """Snapshots of every group's CPU seconds, every ``interval`` seconds while running."""

    groups: list[Group]
    interval: float = 1.0
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def take(self) -> None:
        at = time.time()  # with the machine's figure; the process trees follow within milliseconds
        sample: dict[str, float] = {"machine": machine_busy_seconds()}
        for group in self.groups:
            parts = group.snapshot()
            sample[group.name] = sum(parts.values())
            if group.per_role:
                sample.update({f"{group.name}/{key}": value for key, value in parts.items()})
        self.samples.append((at, sample))

    def start(self) -> None:
        self.take()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.take()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.take()

    def used(self) -> dict[str, float]:
        """CPU seconds each key used between the first and the last sample."""
        (_, first), (_, last) = self.samples[0], self.samples[-1]
        return {key: last[key] - first.get(key, 0.0) for key in last}

    def write_csv(self, path: Path) -> None:
        """One row per sample: the time, then each key's CPU seconds so far."""
        keys = sorted({key for _, sample in self.samples for key in sample})
        with path.open("w", newline="") as output:
            writer = csv.writer(output)
            writer.writerow(["timestamp", *keys])
            for at, sample in self.samples:
                writer.writerow([f"{at:.3f}", *(f"{sample.get(key, 0.0):.3f}" for key in keys)])
