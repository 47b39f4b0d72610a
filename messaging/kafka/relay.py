"""The outbox relay: publish each served module's outbox to its Kafka topic, in order, without loss.

One relay runs per module database at a time (``messaging.kafka.lease``; a second relay waits
as a hot standby). Each round it takes one step of every module's pipeline
(``messaging.kafka.pipeline``): read the rows that may go (``messaging.kafka.outbox``, the
polling-trap guard), send them, mark them published once the broker acknowledged them. It
keeps no state the database does not have, so a relay killed at any point starts again where
the outbox says. Woken by PostgreSQL's NOTIFY at each commit; SQLite is polled. See
docs/messaging.md for all of it.

Liveness: ``last_progress`` is the time of the last round that did its job (published, found
nothing to do, or stood by behind another relay's lease). Rounds that keep failing for
``RELAY_STALL_EXIT_SECONDS`` (a database connection it cannot regain, a broker that never takes
a batch) raise :class:`~messaging.kafka.liveness.RelayStalled`, so that its process exits and its
supervisor restarts it; ``heartbeat`` (a file) lets a supervisor see the same from outside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, connections
from kafka.errors import KafkaError

from messaging.conf import messaging_settings
from messaging.kafka.liveness import Heartbeat, RelayStalled
from messaging.kafka.pipeline import ModulePipeline, RelayError, RelayStats, Sender
from messaging.kafka.topics import events_topic

logger = logging.getLogger(__name__)

__all__ = ["OutboxRelay", "RelayBusy", "RelayError", "RelayStalled", "RelayStats"]


class RelayBusy(RuntimeError):
    """Another relay holds a module's outbox."""


class OutboxRelay:
    """Carries the outboxes of ``modules`` to Kafka. Not thread-safe: one thread drives it."""

    def __init__(
        self,
        modules: Sequence[str],
        *,
        bootstrap_servers: list[str] | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        standby_interval: float = 1.0,
        linger: float = 0.01,
        producer_overrides: dict | None = None,
        ensure_topics: bool = True,
        stall_exit_seconds: float | None = None,
        heartbeat_file: str | None = None,
        client: str | None = None,
    ) -> None:
        if not modules:
            raise ValueError("the relay needs at least one module")
        self.bootstrap_servers = bootstrap_servers or messaging_settings.bootstrap_servers
        self.batch_size = batch_size or messaging_settings.RELAY_BATCH_SIZE
        self.stats = RelayStats(published=dict.fromkeys(modules, 0))
        #: The Kafka client that carries the records (messaging.kafka.producers): MESSAGING_RELAY_CLIENT.
        self.client = client or messaging_settings.RELAY_CLIENT
        self._stop = threading.Event()
        self._sender = Sender(
            [events_topic(module) for module in modules],
            bootstrap_servers=self.bootstrap_servers,
            overrides=producer_overrides or {},
            ensure=ensure_topics,
            stop=self._stop,
            client=self.client,
        )
        #: One pipeline per module; each holds its module's lease (``held``, ``acquire()``).
        self.outboxes = [ModulePipeline(module, self._sender, self.stats) for module in modules]
        # Notifications wake a PostgreSQL relay at once; the poll is only a safety net there.
        # SQLite has no notifications, so it is polled often.
        all_postgresql = all(outbox.vendor == "postgresql" for outbox in self.outboxes)
        self.poll_interval = poll_interval if poll_interval is not None else (1.0 if all_postgresql else 0.1)
        self.standby_interval = standby_interval
        # Under a steady stream every commit notifies; a round per notification would pay
        # the fixed cost of a round (three queries, a broker round trip) per event. So a
        # round that follows a non-empty one within ``linger`` seconds waits out the rest
        # of it and carries everything that committed meanwhile. A lone event after a quiet
        # spell goes at once; a full batch (catching up) goes on at once.
        self.linger = linger
        # stop() writes here so that a relay waiting in select() returns at once.
        self._wakeup_read, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_write, False)
        self.stall_exit_seconds = float(
            messaging_settings.RELAY_STALL_EXIT_SECONDS if stall_exit_seconds is None else stall_exit_seconds
        )
        heartbeat_file = messaging_settings.RELAY_HEARTBEAT_FILE if heartbeat_file is None else heartbeat_file
        self.heartbeat = Heartbeat(heartbeat_file)
        #: time.monotonic() of the last round that did its job; read by other threads (run_relay's watchdog).
        self.last_progress = time.monotonic()
        #: What it is doing, in a few words ("relaying", "standby", "failing: ...").
        self.status = "starting"

    # --- lifecycle --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish the batch in hand and return (safe from a signal handler)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wakeup_write, b"x")

    def close(self) -> None:
        if any(outbox.has_in_flight for outbox in self.outboxes):
            self._finish_in_flight()
        self._sender.drop(timeout=5)
        for outbox in self.outboxes:
            outbox.close()
        for fd in (self._wakeup_read, self._wakeup_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> OutboxRelay:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- one pass ---------------------------------------------------------------------
    def drain(self) -> int:
        """Publish every row that is ready now, for each held module; raises on failure."""
        published = 0
        for outbox in self.outboxes:
            if not outbox.acquire():
                raise RelayBusy(f"another relay holds the {outbox.module} outbox")
            while True:
                count, full, _ = outbox.step(self.batch_size)
                published += count
                if not full:
                    break
        return published

    def _finish_in_flight(self) -> None:
        for outbox in self.outboxes:
            outbox.finish_in_flight()

    # --- the loop -----------------------------------------------------------------------
    def run(
        self,
        *,
        once: bool = False,
        max_failures: int | None = None,
        on_progress: Callable[[RelayStats], None] | None = None,
        progress_interval: float = 10.0,
    ) -> RelayStats:
        """Relay until :meth:`stop` (or, with ``once``, until nothing is ready).

        Failures (broker or database unreachable) are retried with backoff; the rows stay
        in the outbox meanwhile. ``max_failures`` consecutive failures raise instead.
        """
        consecutive_failures = 0
        self.last_progress = time.monotonic()
        self.heartbeat.beat(self.last_progress, force=True)  # a probe finds the file from the start
        held_back_delay = 0.005
        last_busy_round = -1.0  # when the last round that published (without filling a batch) began
        next_progress = time.monotonic() + progress_interval
        while not self._stop.is_set():
            if on_progress is not None and time.monotonic() >= next_progress:
                on_progress(self.stats)
                next_progress = time.monotonic() + progress_interval
            try:
                held = self._acquire_free()
                if not held:
                    if once:
                        raise RelayBusy("another relay holds every outbox this process serves")
                    self._progressed("standby: another relay holds the lease")
                    self._stop.wait(self.standby_interval)
                    continue
                linger_left = last_busy_round + self.linger - time.monotonic()
                if linger_left > 0:
                    self._stop.wait(linger_left)
                round_started = time.monotonic()
                more, waiting, published = False, False, 0
                for outbox in held:
                    outbox.take_notifications()
                    count, full, blocked = outbox.step(self.batch_size)
                    more, waiting, published = more or full, waiting or blocked, published + count
                last_busy_round = round_started if published and not more else -1.0
                self._sender.poll()
                consecutive_failures = 0
                self._progressed("relaying")
            except (KafkaError, RelayError, DatabaseError, OSError) as error:
                consecutive_failures += 1
                self.stats.failures += 1
                self.status = f"failing: {type(error).__name__}"
                self._finish_in_flight()
                self._recover_connections()
                if max_failures is not None and consecutive_failures >= max_failures:
                    raise
                self._check_stalled(error)
                delay = min(0.5 * 2 ** (consecutive_failures - 1), 10.0)
                logger.warning("relay round failed (%s); retrying in %.1fs", error, delay)
                self._stop.wait(delay)
                continue
            if more:
                continue
            if once:
                if waiting:
                    logger.info("rows remain behind a transaction still running; a later run publishes them")
                break
            # Rows held back by an older running transaction: no notification comes when it
            # ends (unless it publishes), so look again soon, backing off while it lasts.
            held_back_delay = min(held_back_delay * 2, self.poll_interval) if waiting else 0.005
            self._wait(held, held_back_delay if waiting else self.poll_interval)
        if on_progress is not None:
            on_progress(self.stats)
        return self.stats

    def _progressed(self, status: str) -> None:
        self.last_progress = time.monotonic()
        self.status = status
        self.heartbeat.beat(self.last_progress)

    def _check_stalled(self, error: BaseException) -> None:
        idle = time.monotonic() - self.last_progress
        if self.stall_exit_seconds > 0 and idle > self.stall_exit_seconds:
            raise RelayStalled(
                f"no successful round for {idle:.0f}s (last error: {error}); "
                f"more than MESSAGING_RELAY_STALL_EXIT_SECONDS={self.stall_exit_seconds:g}"
            ) from error

    def _acquire_free(self) -> list[ModulePipeline]:
        held = []
        for outbox in self.outboxes:
            was_held = outbox.held
            if outbox.acquire(retry_after=self.standby_interval):
                if not was_held:
                    logger.info("%s: relaying the outbox to %s", outbox.module, outbox.topic)
                held.append(outbox)
        return held

    def _recover_connections(self) -> None:
        for outbox in self.outboxes:
            connection = connections[outbox.alias]
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # the next query reconnects

    def _wait(self, held: list[ModulePipeline], timeout: float) -> None:
        sockets = [fd for fd in (outbox.fileno() for outbox in held) if fd is not None]
        if len(sockets) < len(held):  # some outbox is polled (SQLite)
            timeout = min(timeout, self.poll_interval)
        with contextlib.suppress(InterruptedError, OSError, ValueError):
            readable, _, _ = select.select([self._wakeup_read, *sockets], [], [], timeout)
            if self._wakeup_read in readable:
                os.read(self._wakeup_read, 64)
