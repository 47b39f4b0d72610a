"""ensure_topics: create each module's events and dead-letter topics on the broker (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from kafka.errors import KafkaError

from messaging.conf import messaging_settings
from messaging.kafka.topics import DEFAULT_PARTITIONS, ensure_topics, module_topics


class Command(BaseCommand):
    help = (
        "Create the Kafka topics of Quire's modules if missing: <prefix>.<module>.events (the outbox, keyed by "
        "aggregate id) and <prefix>.<module>.dlq (dead letters). Existing topics are left as they are. Safe to run "
        "on every deploy. The prefix is KAFKA_TOPIC_PREFIX; the broker is KAFKA_BOOTSTRAP_SERVERS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--partitions",
            type=int,
            default=DEFAULT_PARTITIONS,
            help=f"partitions of a new topic (default {DEFAULT_PARTITIONS}); the unit of consumer parallelism. "
            "Existing topics keep theirs: adding partitions would reorder keys.",
        )
        parser.add_argument(
            "--replication-factor",
            type=int,
            default=None,
            help="replicas of a new topic (default: min(3, brokers in the cluster)).",
        )
        parser.add_argument(
            "--module",
            action="append",
            choices=messaging_settings.MODULES,
            help="only this module's topics (repeatable; default: every module of Quire).",
        )
        parser.add_argument("--bootstrap-servers", help="host:port[,host:port] (default: KAFKA_BOOTSTRAP_SERVERS).")

    def handle(self, *args, **options):
        if options["partitions"] < 1:
            raise CommandError("--partitions must be at least 1.")
        servers = _servers(options["bootstrap_servers"])
        modules = options["module"] or list(messaging_settings.MODULES)
        try:
            results = ensure_topics(
                module_topics(modules),
                partitions=options["partitions"],
                replication_factor=options["replication_factor"],
                bootstrap_servers=servers,
            )
        except (KafkaError, RuntimeError) as error:
            raise CommandError(f"could not ensure topics on {', '.join(servers)}: {error!r}") from error
        for result in results:
            if result.created:
                self.stdout.write(self.style.SUCCESS(f"created  {result.topic} ({result.partitions} partitions)"))
            else:
                note = ""
                if result.partitions != options["partitions"]:
                    note = f" (asked for {options['partitions']}; left unchanged)"
                self.stdout.write(f"exists   {result.topic} ({result.partitions} partitions){note}")


def _servers(option: str | None) -> list[str]:
    servers = [s.strip() for s in option.split(",") if s.strip()] if option else messaging_settings.bootstrap_servers
    if not servers:
        raise CommandError("no broker: set KAFKA_BOOTSTRAP_SERVERS (e.g. 127.0.0.1:59092) or pass --bootstrap-servers.")
    return servers
