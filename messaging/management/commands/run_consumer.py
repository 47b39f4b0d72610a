"""run_consumer: apply other modules' events from Kafka to this process's handlers (``messaging.kafka.consumer``)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import closing

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from messaging.conf import messaging_settings
from messaging.delivery import Outcome
from messaging.kafka.consumer import ModuleConsumer, ProcessedCallback
from messaging.kafka.dead_letters import DeadLetterQueue
from messaging.kafka.liveness import WEDGED_EXIT_CODE, WEDGED_GRACE_SECONDS, Heartbeat
from messaging.kafka.topics import consumer_group
from messaging.management.commands._kafka import (
    log_command_output,
    quiet_kafka_client,
    require_kafka_transport,
    selected_modules,
    stop_on_signals,
)
from messaging.progress import Progress

logger = logging.getLogger(__name__)

#: Exit status of a process stopped by ``--crash-after-applied`` (EX_TEMPFAIL: restart it).
CRASH_DRILL_EXIT_CODE = 75
#: Consumer settings of a drill run: one record per poll, so one event per delivery transaction.
CRASH_DRILL_CONSUMER_OVERRIDES = {"max_poll_records": 1}


def crash_after_applied(count: int) -> ProcessedCallback:
    """A drill hook: kill the process the moment the ``count``-th applied event has committed.

    ``on_processed`` runs after the handlers' transaction committed and before the record's
    offset is recorded for commit, so this is a crash in exactly the window the inbox covers.
    Delivery commits a polled batch in one transaction, so the drill's consumers poll one record
    at a time (:data:`CRASH_DRILL_CONSUMER_OVERRIDES`): the crash then follows the N-th event's
    own commit, with no later event of its batch committed beside it.
    """
    lock = threading.Lock()
    applied = 0

    def on_processed(record, envelope, outcomes) -> None:
        nonlocal applied
        if Outcome.APPLIED not in outcomes:
            return
        with lock:
            applied += 1
            if applied < count:
                return
            sys.stdout.flush()
            sys.stderr.write(
                f"fault drill: exiting after {applied} applied event(s), last {record.topic}[{record.partition}]@"
                f"{record.offset}, before its offset commit\n"
            )
            sys.stderr.flush()
            os._exit(CRASH_DRILL_EXIT_CODE)  # no cleanup, no commit: as abrupt as a crash

    return on_processed


class Command(BaseCommand):
    help = (
        "Consume, for each module this process serves (SERVICE), the events topics of the modules whose events its "
        "handlers handle, as consumer group <prefix>.<module>. Each event runs its handlers with the inbox in one "
        "transaction (duplicates skipped), retried with backoff, parked as a dead letter (table and "
        "<prefix>.<module>.dlq) if it keeps failing; the offset is committed after. Runs until SIGTERM/SIGINT, "
        "which finishes the batch in hand, commits and leaves the group. A consumer that makes no progress for "
        "MESSAGING_CONSUMER_STALL_EXIT_SECONDS (broker or database away, no partitions, a wedged handler) makes the "
        "command exit non-zero, for its supervisor to restart it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--module", action="append", help="consume only for this served module (repeatable).")
        parser.add_argument(
            "--max-messages",
            type=int,
            default=None,
            help="exit after this many records (per consumer: per module and worker).",
        )
        parser.add_argument(
            "--idle-exit",
            type=float,
            default=None,
            help="exit once no record arrived for this many seconds (e.g. to drain a backlog and stop).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="consumers per module in this process, each a member of the module's group with partitions of "
            "its own (default 1; more than the partition count leaves some idle). Handlers spend most of their "
            "time waiting on the database, so a few workers raise throughput even on one CPU.",
        )
        parser.add_argument(
            "--progress-interval", type=float, default=10.0, help="seconds between progress lines (default 10)."
        )
        parser.add_argument(
            "--crash-after-applied",
            type=int,
            default=None,
            metavar="N",
            help=f"fault drill, never for production: right after the N-th applied event's database commit, exit "
            f"at once with status {CRASH_DRILL_EXIT_CODE}, before its offset is committed (a restart must skip the "
            'replay through the inbox). See docs/messaging.md, "Fault drills".',
        )

    def handle(self, *args, **options):
        log_command_output(self, logger)
        require_kafka_transport("run_consumer")
        quiet_kafka_client(options["verbosity"])
        modules = selected_modules(options["module"])
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        if options["crash_after_applied"] is not None and options["crash_after_applied"] < 1:
            raise CommandError("--crash-after-applied must be at least 1.")
        on_processed, overrides = None, None
        if options["crash_after_applied"]:
            on_processed = crash_after_applied(options["crash_after_applied"])
            overrides = CRASH_DRILL_CONSUMER_OVERRIDES
        # One dead-letter producer for every consumer of the process, made only if something is parked.
        with closing(DeadLetterQueue()) as dead_letters:
            consumers = [
                ModuleConsumer(
                    module, on_processed=on_processed, consumer_overrides=overrides, dead_letters=dead_letters
                )
                for module in modules
                for _ in range(options["workers"])
            ]
            consumers = [consumer for consumer in consumers if consumer.topics]
            if not consumers:
                self.stdout.write(f"{', '.join(modules)} handle no events: nothing to consume")
                return
            self._consume(consumers, options)

    def _consume(self, consumers: list[ModuleConsumer], options) -> None:
        errors: list[tuple[str, BaseException]] = []

        def run(consumer: ModuleConsumer) -> None:
            try:
                consumer.run(max_messages=options["max_messages"], idle_exit=options["idle_exit"])
            except BaseException as error:
                errors.append((consumer.module, error))
                for other in consumers:
                    other.stop()
            finally:
                connections.close_all()  # this thread's connections

        threads = [
            threading.Thread(target=run, args=(c,), name=f"consumer-{c.module}-{n}") for n, c in enumerate(consumers)
        ]
        for consumer in {consumer.module: consumer for consumer in consumers}.values():
            group = consumer_group(consumer.module)
            self.stdout.write(
                f"{consumer.module}: group {group} reads {', '.join(consumer.topics)} ({options['workers']} worker(s))"
            )
        progress = Progress(self.stdout)
        with stop_on_signals(lambda: [consumer.stop() for consumer in consumers]):
            for thread in threads:
                thread.start()
            next_progress = time.monotonic() + options["progress_interval"]
            reported = None
            # join() with a timeout keeps the main thread free to run the signal handler.
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(timeout=0.2)
                self._watch(progress, consumers, threads)
                state = (
                    sum(consumer.stats.processed for consumer in consumers),
                    tuple(consumer.status for consumer in consumers),
                )
                if time.monotonic() >= next_progress and state != reported:  # unchanged: say nothing
                    self._progress(progress, consumers)
                    reported = state
                    next_progress = time.monotonic() + options["progress_interval"]
        self._progress(progress, consumers, final=True)
        if errors:
            module, error = errors[0]
            raise CommandError(f"the {module} consumer stopped on {error!r}") from error
        self.stdout.write(self.style.SUCCESS("stopped cleanly"))

    def _watch(self, progress: Progress, consumers: list[ModuleConsumer], threads: list[threading.Thread]) -> None:
        """Touch the heartbeat file; exit if a consumer thread stopped progressing and did not stop itself."""
        now = time.monotonic()
        running = [consumer for consumer, thread in zip(consumers, threads, strict=True) if thread.is_alive()]
        if not running:
            return
        oldest = min(consumer.last_progress for consumer in running)
        # Its mtime is the oldest progress of this process's consumers: a probe compares it to its own limit.
        if not hasattr(self, "_heartbeat"):
            self._heartbeat = Heartbeat(messaging_settings.CONSUMER_HEARTBEAT_FILE)
        self._heartbeat.beat(oldest)
        limit = messaging_settings.CONSUMER_STALL_EXIT_SECONDS
        if not limit or now - oldest <= limit + WEDGED_GRACE_SECONDS:
            return
        # Its loop would have raised ConsumerStalled by now: the thread is stuck inside a call.
        stuck = [consumer for consumer in running if now - consumer.last_progress > limit + WEDGED_GRACE_SECONDS]
        if not hasattr(self, "_wedged_since"):
            self._wedged_since = now
            for consumer in stuck:
                self.stderr.write(
                    f"{consumer.module}: consumer wedged, no progress for {now - consumer.last_progress:.0f}s "
                    f"({consumer.status}): stopping"
                )
            for consumer in consumers:
                consumer.stop()
        elif now - self._wedged_since > WEDGED_GRACE_SECONDS:
            self._progress(progress, consumers, final=True)
            self.stderr.write(f"consumer thread(s) did not stop: exiting with status {WEDGED_EXIT_CODE}")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(WEDGED_EXIT_CODE)  # a thread stuck in a call cannot be joined

    def _progress(self, progress: Progress, consumers: list[ModuleConsumer], *, final: bool = False) -> None:
        for module in dict.fromkeys(consumer.module for consumer in consumers):
            mine = [consumer for consumer in consumers if consumer.module == module]
            stats = [consumer.stats for consumer in mine]
            statuses = ", ".join(sorted({consumer.status for consumer in mine}))
            progress.count(
                module,
                sum(s.processed for s in stats),
                "processed",
                f"{sum(s.applied for s in stats)} applied, {sum(s.duplicates for s in stats)} duplicates, "
                f"{sum(s.dead_lettered for s in stats)} dead-lettered, {sum(s.unparseable for s in stats)} unreadable; "
                f"{sum(len(consumer.assigned) for consumer in mine)} partition(s), {statuses}",
                final=final,
            )
