"""messaging_status: is every event on its way? Outbox backlog per module, consumer lag per partition."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from messaging.conf import messaging_settings
from messaging.kafka.status import consumer_lag, outbox_backlog
from messaging.kafka.topics import consumer_group, events_topic
from messaging.management.commands._kafka import selected_modules
from messaging.registry import subscribed_producers


class Command(BaseCommand):
    help = (
        "Show, for each module this process serves: the outbox backlog (rows not yet published, age of the oldest), "
        "parked dead letters, and on PostgreSQL the oldest running transaction (the relay publishes nothing younger); "
        "then, with the Kafka transport, each consumer group's committed offset, log end and lag per partition."
    )

    def add_arguments(self, parser):
        parser.add_argument("--module", action="append", help="only this served module (repeatable).")
        parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables.")
        parser.add_argument("--no-kafka", action="store_true", help="skip the broker (outbox and dead letters only).")

    def handle(self, *args, **options):
        modules = selected_modules(options["module"])
        backlogs = [outbox_backlog(module) for module in modules]
        lags, kafka_error = [], ""
        groups = {
            consumer_group(module): [events_topic(producer) for producer in sorted(subscribed_producers(module))]
            for module in modules
        }
        groups = {group: topics for group, topics in groups.items() if topics}
        use_kafka = messaging_settings.TRANSPORT == "kafka" and not options["no_kafka"] and groups
        if use_kafka:
            try:
                lags = consumer_lag(groups)
            except Exception as error:  # the outbox half of the report is still worth printing
                kafka_error = f"{type(error).__name__}: {error}"
        if options["json"]:
            self._print_json(backlogs, lags, kafka_error)
        else:
            self._print_tables(backlogs, lags, kafka_error, use_kafka)

    def _print_tables(self, backlogs, lags, kafka_error, use_kafka):
        self.stdout.write(self.style.MIGRATE_HEADING("Outbox"))
        header = f"{'module':<16}{'unpublished':>12}  {'oldest':>10}  {'parked':>7}  oldest running transaction"
        self.stdout.write(header)
        for backlog in backlogs:
            age = backlog.oldest_age_seconds
            self.stdout.write(
                f"{backlog.module:<16}{backlog.unpublished:>12}  {_age(age):>10}  {backlog.parked_dead_letters:>7}  "
                f"{backlog.oldest_running_transaction or '-'}"
            )
        if not use_kafka:
            return
        self.stdout.write(self.style.MIGRATE_HEADING("Consumer lag"))
        if kafka_error:
            self.stdout.write(self.style.ERROR(f"Kafka unreachable: {kafka_error}"))
            return
        self.stdout.write(f"{'group':<32}{'topic':<36}{'part':>5}{'committed':>11}{'end':>11}{'lag':>9}")
        for lag in lags:
            committed = "-" if lag.committed is None else str(lag.committed)
            self.stdout.write(
                f"{lag.group:<32}{lag.topic:<36}{lag.partition:>5}{committed:>11}{lag.end:>11}{lag.lag:>9}"
            )
        total = sum(lag.lag for lag in lags)
        self.stdout.write(f"total lag: {total}")

    def _print_json(self, backlogs, lags, kafka_error):
        document = {
            "outbox": [
                {
                    "module": b.module,
                    "unpublished": b.unpublished,
                    "oldest_age_seconds": b.oldest_age_seconds,
                    "parked_dead_letters": b.parked_dead_letters,
                    "oldest_running_transaction": b.oldest_running_transaction,
                }
                for b in backlogs
            ],
            "consumer_lag": [
                {
                    "group": lag.group,
                    "topic": lag.topic,
                    "partition": lag.partition,
                    "committed": lag.committed,
                    "end": lag.end,
                    "lag": lag.lag,
                }
                for lag in lags
            ],
            "kafka_error": kafka_error or None,
        }
        self.stdout.write(json.dumps(document, indent=2))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
