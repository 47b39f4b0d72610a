"""run_consumer: apply other modules' events from Kafka to this process's handlers (``messaging.kafka.consumer``)."""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import closing

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from messaging.delivery import Outcome
from messaging.kafka.consumer import ModuleConsumer, ProcessedCallback
from messaging.kafka.dead_letters import DeadLetterQueue
from messaging.kafka.topics import consumer_group
from messaging.management.commands._kafka import (
    quiet_kafka_client,
    require_kafka_transport,
    selected_modules,
    stop_on_signals,
)
from messaging.progress import Progress

#: Exit status of a process stopped by ``--crash-after-applied`` (EX_TEMPFAIL: restart it).
CRASH_DRILL_EXIT_CODE = 75


def crash_after_applied(count: int) -> ProcessedCallback:
    """A drill hook: kill the process the moment the ``count``-th applied event has committed.

    ``on_processed`` runs after the handlers' transaction committed and before the record's
    offset is recorded for commit, so this is a crash in exactly the window the inbox covers.
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
        "which finishes the event in hand, commits and leaves the group."
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
        require_kafka_transport("run_consumer")
        quiet_kafka_client(options["verbosity"])
        modules = selected_modules(options["module"])
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        if options["crash_after_applied"] is not None and options["crash_after_applied"] < 1:
            raise CommandError("--crash-after-applied must be at least 1.")
        on_processed = crash_after_applied(options["crash_after_applied"]) if options["crash_after_applied"] else None
        # One dead-letter producer for every consumer of the process, made only if something is parked.
        with closing(DeadLetterQueue()) as dead_letters:
            consumers = [
                ModuleConsumer(module, on_processed=on_processed, dead_letters=dead_letters)
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
            # join() with a timeout keeps the main thread free to run the signal handler.
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(timeout=0.2)
                if time.monotonic() >= next_progress:
                    self._progress(progress, consumers)  # an idle module says nothing
                    next_progress = time.monotonic() + options["progress_interval"]
        self._progress(progress, consumers, final=True)
        if errors:
            module, error = errors[0]
            raise CommandError(f"the {module} consumer stopped on {error!r}") from error
        self.stdout.write(self.style.SUCCESS("stopped cleanly"))

    def _progress(self, progress: Progress, consumers: list[ModuleConsumer], *, final: bool = False) -> None:
        for module in dict.fromkeys(consumer.module for consumer in consumers):
            stats = [consumer.stats for consumer in consumers if consumer.module == module]
            progress.count(
                module,
                sum(s.processed for s in stats),
                "processed",
                f"{sum(s.applied for s in stats)} applied, {sum(s.duplicates for s in stats)} duplicates, "
                f"{sum(s.dead_lettered for s in stats)} dead-lettered, {sum(s.unparseable for s in stats)} unreadable",
                final=final,
            )
