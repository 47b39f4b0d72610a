"""run_relay: carry this process's module outboxes to Kafka (the loop is ``messaging.kafka.relay``)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError

from messaging.kafka.liveness import WEDGED_EXIT_CODE, WEDGED_GRACE_SECONDS
from messaging.kafka.relay import OutboxRelay, RelayBusy, RelayStalled, RelayStats
from messaging.management.commands._kafka import (
    log_command_output,
    quiet_kafka_client,
    require_kafka_transport,
    selected_modules,
    stop_on_signals,
)
from messaging.progress import Progress

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Publish the outbox of each module this process serves (SERVICE) to <prefix>.<module>.events, in commit "
        "order, keyed by aggregate id, marking rows published once the broker acknowledged them. Runs until SIGTERM/"
        "SIGINT; woken by PostgreSQL NOTIFY at each commit (SQLite: polled). One relay per module database holds it "
        "at a time; a second one waits as a hot standby. If Kafka is down the rows wait in the outbox and the relay "
        "retries with backoff. Rounds that keep failing for MESSAGING_RELAY_STALL_EXIT_SECONDS (a database "
        "connection it cannot regain, a broker that never takes a batch) make it exit non-zero, for its supervisor "
        "to restart it; MESSAGING_RELAY_HEARTBEAT_FILE is touched after each successful round (manage.py "
        "check_heartbeat relay reads it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="publish what is ready now, then exit.")
        parser.add_argument("--module", action="append", help="relay only this served module's outbox (repeatable).")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="rows per round (default: MESSAGING_RELAY_BATCH_SIZE)."
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=None,
            help="seconds between polls when no notification arrives (default 1.0 on PostgreSQL, 0.1 on SQLite).",
        )
        parser.add_argument(
            "--linger",
            type=float,
            default=0.01,
            help="under a steady stream, seconds a round waits after the previous one so that it carries several "
            "events (default 0.01; a lone event after a quiet spell goes at once).",
        )
        parser.add_argument(
            "--progress-interval", type=float, default=10.0, help="seconds between progress lines (default 10)."
        )

    def handle(self, *args, **options):
        log_command_output(self, logger)
        require_kafka_transport("run_relay")
        quiet_kafka_client(options["verbosity"])
        modules = selected_modules(options["module"])
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        once = options["once"]
        relay = OutboxRelay(
            modules,
            batch_size=options["batch_size"],
            poll_interval=options["poll_interval"],
            linger=options["linger"],
        )
        self.stdout.write(
            f"relaying the outbox of {', '.join(modules)}{' once' if once else ''} with {relay.client} "
            "(MESSAGING_RELAY_CLIENT)"
        )
        progress = Progress(self.stdout)

        def report(stats: RelayStats) -> None:
            # The rate is that of the last interval; an idle relay says nothing.
            per_module = ", ".join(f"{module} {count}" for module, count in stats.published.items())
            progress.count("published", stats.total, "event(s)", f"{per_module}; failed rounds {stats.failures}")

        finished = threading.Event()  # ends the watchdog with the loop it watches
        if not once:
            watchdog = threading.Thread(
                target=self._watchdog, args=(relay, finished), name="relay-watchdog", daemon=True
            )
            watchdog.start()
        try:
            with stop_on_signals(relay.stop):
                stats = relay.run(
                    once=once,
                    max_failures=3 if once else None,
                    on_progress=report,
                    progress_interval=options["progress_interval"],
                )
        except RelayBusy as error:
            raise CommandError(f"{error}; it publishes these rows.") from error
        except RelayStalled as error:
            raise CommandError(f"relay stalled: {error}") from error
        except Exception as error:
            raise CommandError(f"relay stopped: {error}") from error
        finally:
            finished.set()
            relay.close()
        self.stdout.write(self.style.SUCCESS(f"published {stats.total} event(s); stopped cleanly"))

    def _watchdog(self, relay: OutboxRelay, finished: threading.Event) -> None:
        """Exit the process if the relay's loop is stuck inside a call (it cannot raise RelayStalled itself)."""
        limit = relay.stall_exit_seconds
        while limit > 0 and not finished.wait(1.0):
            stuck_for = time.monotonic() - relay.last_progress
            if stuck_for > limit + WEDGED_GRACE_SECONDS:
                self.stderr.write(
                    f"relay wedged: no successful round for {stuck_for:.0f}s ({relay.status}): exiting with status "
                    f"{WEDGED_EXIT_CODE}"
                )
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(WEDGED_EXIT_CODE)  # the main thread is stuck in a call: nothing to join
