"""run_consumer: apply other modules' events from Kafka to this process's handlers."""

from __future__ import annotations

import threading
import time

from django.core.management.base import BaseCommand, CommandError

from messaging.kafka_consumer import ModuleConsumer
from messaging.management.commands._kafka import (
    on_stop_signals,
    quiet_kafka_client,
    require_kafka_transport,
    selected_modules,
)
from messaging.topics import consumer_group


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
        parser.add_argument("--max-messages", type=int, default=None, help="exit after this many records (per module).")
        parser.add_argument(
            "--idle-exit",
            type=float,
            default=None,
            help="exit once no record arrived for this many seconds (e.g. to drain a backlog and stop).",
        )
        parser.add_argument(
            "--progress-interval", type=float, default=10.0, help="seconds between progress lines (default 10)."
        )

    def handle(self, *args, **options):
        require_kafka_transport("run_consumer")
        quiet_kafka_client(options["verbosity"])
        modules = selected_modules(options["module"])
        consumers = [ModuleConsumer(module) for module in modules]
        consumers = [consumer for consumer in consumers if consumer.topics]
        if not consumers:
            self.stdout.write(f"{', '.join(modules)} handle no events: nothing to consume")
            return
        on_stop_signals(lambda: [consumer.stop() for consumer in consumers])
        errors: list[tuple[str, BaseException]] = []

        def run(consumer: ModuleConsumer) -> None:
            try:
                consumer.run(max_messages=options["max_messages"], idle_exit=options["idle_exit"])
            except BaseException as error:
                errors.append((consumer.module, error))
                for other in consumers:
                    other.stop()

        threads = [threading.Thread(target=run, args=(c,), name=f"consumer-{c.module}") for c in consumers]
        for consumer in consumers:
            group = consumer_group(consumer.module)
            self.stdout.write(f"{consumer.module}: group {group} reads {', '.join(consumer.topics)}")
        for thread in threads:
            thread.start()
        next_progress = time.monotonic() + options["progress_interval"]
        reported = -1
        # join() with a timeout keeps the main thread free to run the signal handler.
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=0.2)
            processed = sum(consumer.stats.processed for consumer in consumers)
            if time.monotonic() >= next_progress and processed != reported:  # idle: say nothing
                self._progress(consumers)
                reported = processed
                next_progress = time.monotonic() + options["progress_interval"]
        self._progress(consumers)
        if errors:
            module, error = errors[0]
            raise CommandError(f"the {module} consumer stopped on {error!r}") from error
        self.stdout.write(self.style.SUCCESS("stopped cleanly"))

    def _progress(self, consumers: list[ModuleConsumer]) -> None:
        for consumer in consumers:
            stats = consumer.stats
            elapsed = max(time.monotonic() - stats.started, 1e-9)
            self.stdout.write(
                f"{consumer.module}: {stats.processed} processed ({stats.processed / elapsed:.0f}/s), "
                f"{stats.applied} applied, {stats.duplicates} duplicates, {stats.dead_lettered} dead-lettered, "
                f"{stats.unparseable} unreadable"
            )
