"""Kafka consumer catch-up benchmark: applying a backlog vs applying events as they arrive.

Run (PostgreSQL and Kafka up):
    scripts/dev/postgres.sh start && scripts/dev/kafka.sh start
    eval "$(scripts/dev/postgres.sh env)"; eval "$(scripts/dev/kafka.sh env)"
    .venv/bin/python bench/bench_consumer_catchup.py     # defaults: 20000-event backlog, then 100 events/s for 10 s

In one run, with orders' real ``ModuleConsumer`` and handlers (the product copy):

1. Catch-up: a backlog of ``--backlog`` catalog events (BookPublished for goodbooks-10k books,
   then StockChanged for them) is written to the topic before the consumer starts; the consumer
   applies it. Reported: events/s, process CPU ms per event (every thread: poll and kafka-python's
   IO thread), evictions (partitions lost) and kafka-python errors logged.
2. Steady: StockChanged events are then produced at ``--rate`` events/s for ``--seconds``;
   reported: CPU ms per event and the produce-to-applied latency (p50/p99).

The ratio that matters is catch-up CPU/event over steady CPU/event (should be <= 1: a consumer
that is behind must not get slower per event), and catch-up events/s over the steady rate.
Uses its own topic prefix and the module databases of the environment (orders' product rows it
writes are the benchmark's books: run it against a dev server, not one with data you keep).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from environment import BASE_DIR, BOOKS_CSV, production_settings  # bench/: benchmarks run as scripts from bench/


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LogCounter(logging.Handler):
    """Counts the kafka-python and consumer log lines that mean trouble."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "partitions lost" in message:
            key = "partitions lost (evicted)"
        elif "blocking the event loop" in message:
            key = "slow IO-loop task (>0.1 s)"
        elif record.exc_info and record.exc_info[0] is AttributeError:
            key = "AttributeError"
        elif record.levelno >= logging.ERROR:
            key = f"error: {record.name}"
        else:
            return
        self.counts[key] = self.counts.get(key, 0) + 1


def setup(prefix: str) -> None:
    if not os.environ.get("ORDERS_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit('bench_consumer_catchup needs PostgreSQL: eval "$(scripts/dev/postgres.sh env)".')
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        sys.exit('bench_consumer_catchup needs Kafka: eval "$(scripts/dev/kafka.sh env)".')
    os.environ.update(production_settings(Path(tempfile.mkdtemp(prefix="quire-bench-catchup-keys-"))))
    os.environ.update(
        {
            "EVENT_TRANSPORT": "kafka",
            "KAFKA_TOPIC_PREFIX": prefix,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",
            # The outbox relay and consumers of the web process are not started: this script is both.
            "MESSAGING_AUTOSTART": "false",
        }
    )
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", database="orders", verbosity=0)


def books(count: int) -> list[dict]:
    import csv
    from decimal import Decimal

    rows = []
    with BOOKS_CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            year = row["original_publication_year"]
            rows.append(
                {
                    "book_id": int(row["book_id"]),
                    "isbn13": None,
                    "title": row["title"],
                    "authors": [a.strip() for a in row["authors"].split(",") if a.strip()],
                    "genres": [],
                    "language": row["language_code"],
                    "publication_year": int(float(year)) if year else None,
                    "price": Decimal("9.99"),
                    "currency": "EUR",
                    "active": True,
                    "available": 5,
                }
            )
            if len(rows) >= count:
                break
    return rows


def record(event) -> tuple[bytes, bytes]:
    from messaging.envelope import Envelope

    envelope = Envelope(
        event_type=event.event_type,
        event_version=event.event_version,
        aggregate_id=str(event.book_id),
        producer="catalog",
        payload=event.to_payload(),
        occurred_at=datetime.now(UTC),
    )
    return envelope.aggregate_id.encode(), json.dumps(envelope.to_dict()).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=100, help="steady phase, events/s (below the consumer's capacity)")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady phase length")
    parser.add_argument("--max-poll-records", type=int, help="override the consumer's max_poll_records")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    prefix = f"bench-catchup-{uuid.uuid4().hex[:8]}"
    setup(prefix)
    counter = LogCounter()
    logging.getLogger().addHandler(counter)

    from kafka import KafkaProducer

    from catalog.contracts import BookPublished, StockChanged
    from messaging.conf import messaging_settings
    from messaging.kafka.consumer import ModuleConsumer
    from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic

    topic = events_topic("catalog")
    ensure_topics([topic, dead_letter_topic("orders")])
    producer = KafkaProducer(bootstrap_servers=messaging_settings.bootstrap_servers, acks="all", linger_ms=5)
    shelf = books(max(args.backlog // 2, 1))
    backlog = [BookPublished(**book) for book in shelf]
    backlog += [StockChanged(book_id=book["book_id"], on_hand=7, reserved=1, available=6) for book in shelf]
    backlog = backlog[: args.backlog]
    for event in backlog:
        key, value = record(event)
        producer.send(topic, key=key, value=value)
    producer.flush()

    applied_at: dict[str, float] = {}
    done = threading.Event()
    target = {"count": len(backlog)}

    def on_processed(record, envelope, outcomes) -> None:
        if envelope is not None:
            applied_at[str(envelope.event_id)] = time.time()
        if len(applied_at) >= target["count"]:
            done.set()

    overrides = {} if args.max_poll_records is None else {"max_poll_records": args.max_poll_records}
    consumer = ModuleConsumer("orders", on_processed=on_processed, consumer_overrides=overrides)
    thread = threading.Thread(target=consumer.run, name="consumer")
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    thread.start()
    if not done.wait(600):
        sys.exit(f"backlog not applied in 600 s ({len(applied_at)} of {len(backlog)})")
    catchup_wall, catchup_cpu = time.monotonic() - wall0, cpu_seconds() - cpu0

    # Steady: events at a fixed rate, produced by this process (its CPU is part of the figure, the
    # same in every run: one send per event, a few microseconds).
    produced_at: dict[str, float] = {}
    steady_count = int(args.rate * args.seconds)
    target["count"] = len(backlog) + steady_count
    done.clear()
    cpu0, start = cpu_seconds(), time.monotonic()
    for sequence in range(steady_count):
        due = start + sequence / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        book = shelf[sequence % len(shelf)]
        event = StockChanged(book_id=book["book_id"], on_hand=8, reserved=sequence % 5, available=8 - sequence % 5)
        key, value = record(event)
        event_id = json.loads(value)["event_id"]
        produced_at[event_id] = time.time()
        producer.send(topic, key=key, value=value)
    producer.flush()
    if not done.wait(120):
        sys.exit(f"steady events not applied in 120 s ({len(applied_at) - len(backlog)} of {steady_count})")
    steady_wall, steady_cpu = time.monotonic() - start, cpu_seconds() - cpu0
    consumer.stop()
    thread.join(30)
    producer.close()

    latencies = sorted((applied_at[event_id] - at) * 1000 for event_id, at in produced_at.items())
    figures = {
        "backlog": len(backlog),
        "catchup_events_per_s": round(len(backlog) / catchup_wall),
        "catchup_cpu_ms_per_event": round(catchup_cpu * 1000 / len(backlog), 3),
        "steady_rate": args.rate,
        "steady_events_per_s": round(steady_count / steady_wall),
        "steady_cpu_ms_per_event": round(steady_cpu * 1000 / steady_count, 3),
        "steady_latency_p50_ms": round(statistics.median(latencies), 1),
        "steady_latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "cpu_ratio_catchup_over_steady": round(catchup_cpu / len(backlog) / (steady_cpu / steady_count), 2),
        "rate_ratio_catchup_over_steady": round(len(backlog) / catchup_wall / args.rate, 1),
        "rebuilds": consumer.stats.rebuilds,
        "dead_lettered": consumer.stats.dead_lettered,
        "log_trouble": counter.counts,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "consumer": _consumer_settings(overrides),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


def _consumer_settings(overrides: dict) -> dict:
    from messaging.kafka.consumer import consumer_config

    config = consumer_config("orders", **overrides)
    return {name: config.get(name) for name in ("max_poll_records", "max_poll_interval_ms", "fetch_max_wait_ms")}


if __name__ == "__main__":
    main()
