"""What the fault drills drive: orders and catalog as separate processes on PostgreSQL and Kafka.

A :class:`SplitShop` is the checkout saga split the way the services topology splits it, with
every process under the test's control so that it can be killed, restarted or cut off:

- ``orders-web``: gunicorn serving ``SERVICE=orders`` (checkout over HTTP);
- ``orders-relay``, ``orders-consumer``, ``catalog-relay``, ``catalog-consumer``: ``manage.py
  run_relay`` / ``run_consumer`` of each service.

Each shop gets two freshly created and migrated PostgreSQL databases (dropped afterwards), a
Kafka topic prefix of its own (topics and consumer groups deleted afterwards) and a work
directory for keys and logs. Books are created in catalog by ``manage.py shell``; orders learns
them through Kafka like in production. Customers are JWTs signed with the shop's own key pair.

:meth:`SplitShop.assert_consistent` is the point of every drill: after the fault, every event
reached every handler exactly once, and orders, outbox, inbox and stock agree to the unit
(the :class:`Ledger`). Processes, servers, HTTP and waiting come from :mod:`tests.support`;
the load a drill puts on the shop is :class:`tests.faults.load.OrderStream`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import postgres
from tests.support.http import Client, wait_answering
from tests.support.kafka import bootstrap, delete_prefixed, envelope_fields, read_records
from tests.support.processes import PYTHON, REPO, clean_env, free_port, spawn, stop, tail
from tests.support.tokens import JwtKeys
from tests.support.waiting import wait_until

SERVICES = ("orders", "catalog")
SETTLED = ("confirmed", "rejected")
#: Seconds a process may take to start, and the saga to settle once nothing stands in its way.
START_TIMEOUT = float(os.environ.get("QUIRE_FAULTS_START_TIMEOUT", "60"))
SETTLE_TIMEOUT = float(os.environ.get("QUIRE_FAULTS_SETTLE_TIMEOUT", "90"))
#: ``2`` keeps kafka-python's own log in the relays' and consumers' logs (to diagnose a failed drill).
VERBOSITY = os.environ.get("QUIRE_FAULTS_VERBOSITY", "1")

#: A drill's few customers place a hundred orders in minutes and pay none: the caps on unpaid copies
#: (tests/orders/test_unpaid_holds.py) and the rate limits on checkouts and carts (tests/web/test_throttling.py)
#: would refuse them, and are not what a drill is about.
DRILL_LIMITS = {
    "ORDERS_MAX_UNPAID_COPIES_PER_BOOK": "0",
    "ORDERS_MAX_UNPAID_COPIES": "0",
    "ORDERS_MAX_UNPAID_SHARE_PER_BOOK": "0",
    "THROTTLE_CHECKOUT_RATE": "",
    "THROTTLE_CART_RATE": "",
    "THROTTLE_PAYMENT_DECLINED_RATE": "",
}


@dataclass(frozen=True)
class Infra:
    """The shared servers: a PostgreSQL URL (any database on it) and Kafka's bootstrap servers."""

    database_url: str
    kafka: str

    @classmethod
    def shared(cls) -> Infra:
        """The dev PostgreSQL and Kafka, started if need be; the caller's variables win, as in ``make test``."""
        return cls(postgres.server_url(), bootstrap())


@dataclass
class Placed:
    order_id: str
    status: int
    seconds: float
    #: Answers before the last, when the checkout was retried with its key: (status, Retry-After, problem code).
    refused: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    #: time.monotonic() of the first refusal and of the final answer.
    first_refused_at: float | None = None
    answered_at: float = 0.0


@dataclass
class Ledger:
    """What the databases say once everything settled (the drill's figures)."""

    orders: int
    confirmed: int
    rejected: int
    reserved_copies: int
    outbox: dict[str, Counter] = field(default_factory=dict)
    inbox: dict[str, Counter] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.orders} orders ({self.confirmed} confirmed, {self.rejected} rejected), "
            f"{self.reserved_copies} copies reserved; outbox {dict(self.outbox['orders'])} / "
            f"{dict(self.outbox['catalog'])}; inbox {dict(self.inbox['orders'])} / {dict(self.inbox['catalog'])}"
        )


@dataclass
class OutboxHold:
    shop: SplitShop
    service: str
    pid: int
    event_ids: list[str]

    def waiting(self) -> list[int]:
        """Backends waiting on this hold's row locks (a relay marking the rows published)."""
        rows = self.shop.sql(
            self.service,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid))",
            (self.pid,),
        )
        return [pid for (pid,) in rows]

    def end_sessions(self, pids: list[int]) -> None:
        """End the database sessions of a killed relay now, rather than when PostgreSQL notices.

        A backend blocked on a lock does not notice that its client died; left alone it would
        apply the dead relay's ``UPDATE`` once the lock is released.
        """
        for pid in pids:
            self.shop.sql(self.service, "SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(
            lambda: not self.shop.sql(self.service, "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)),
            timeout=10,
            message=f"sessions {pids} ended",
        )


class SplitShop:
    """orders and catalog as separate processes, each started, killed and restarted at will."""

    def __init__(
        self,
        *,
        infra: Infra,
        keys: JwtKeys,
        workdir: Path,
        kafka: str | None = None,
        database: str | None = None,
        relay_client: str | None = None,
    ) -> None:
        self.run_id = uuid.uuid4().hex[:10]
        self.prefix = f"faults-{self.run_id}"
        self.kafka = kafka or infra.kafka
        self.admin_url = database or infra.database_url
        self.keys = keys
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.databases = {service: f"quire_faults_{self.run_id}_{service}" for service in SERVICES}
        self.urls = {
            service: postgres.url_with_database(self.admin_url, name) for service, name in self.databases.items()
        }
        #: The relays' Kafka client (MESSAGING_RELAY_CLIENT); None: the default.
        self.relay_client = relay_client
        self.processes: dict[str, subprocess.Popen] = {}
        self.web_port = free_port()
        self._databases = {service: postgres.Database(url) for service, url in self.urls.items()}
        self._created = False
        #: Every refusal a retried checkout met, as it happens: (status, Retry-After, problem code).
        self.refusals: list[tuple[int, str | None, str | None]] = []

    # --- lifecycle ---

    def create(self) -> None:
        """Fresh databases, migrated by each service's own ``migrate`` (both at once)."""
        postgres.create_databases(self.admin_url, self.databases.values())
        self._created = True
        migrations = {
            service: subprocess.Popen(
                [PYTHON, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                cwd=REPO,
                env=self.env(service),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for service in SERVICES
        }
        for service, process in migrations.items():
            output, _ = process.communicate(timeout=START_TIMEOUT)
            if process.returncode != 0:
                raise RuntimeError(f"migrate {service} exited {process.returncode}:\n{output}")

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), drop the databases, delete the topics and groups."""
        stop(self.processes.values(), timeout=20)
        for database in self._databases.values():
            database.close()
        if self._created:
            postgres.drop_databases(self.admin_url, self.databases.values())
        delete_prefixed(self.kafka, self.prefix)

    # --- processes ---

    def env(self, service: str) -> dict[str, str]:
        url = self.urls[service]
        chosen = {"MESSAGING_RELAY_CLIENT": self.relay_client} if self.relay_client else {}
        return clean_env(
            **chosen,
            SERVICE=service,
            EVENT_TRANSPORT="kafka",
            KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            KAFKA_TOPIC_PREFIX=self.prefix,
            DATABASE_URL=url,
            **{f"{service.upper()}_DATABASE_URL": url},
            QUIRE_VAR_DIR=str(self.workdir / "var"),
            JWT_PUBLIC_KEY_FILE=str(self.keys.public_file),
            PYTHONUNBUFFERED="1",
            **DRILL_LIMITS,
        )

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str, *extra: str) -> subprocess.Popen:
        """Start ``<service>-<role>`` (role: web, relay, consumer); its output goes to ``<name>.log``."""
        service, role = name.split("-")
        if role == "web":
            argv = [
                PYTHON,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                f"--bind=127.0.0.1:{self.web_port}",
                "--workers=1",
                "--threads=4",
                "--worker-class=gthread",
                "--timeout=60",
                "--error-logfile=-",
                "--no-control-socket",
            ]
        else:
            argv = [PYTHON, "manage.py", f"run_{role}", "--progress-interval", "2", "-v", VERBOSITY, *extra]
        assert name not in self.processes or self.processes[name].poll() is not None, f"{name} already runs"
        self.processes[name] = spawn(argv, env=self.env(service), log=self.log_path(name))
        return self.processes[name]

    def start_all(self) -> None:
        for name in ("orders-web", "orders-relay", "orders-consumer", "catalog-relay", "catalog-consumer"):
            if name not in self.processes:
                self.start(name)
        wait_answering(
            f"http://127.0.0.1:{self.web_port}/api/",
            timeout=START_TIMEOUT,
            process=self.processes["orders-web"],
            log=self.log_path("orders-web"),
        )

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
        """Send ``sig`` and wait for the process to end; its exit status (negative: the signal)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        return process.wait(timeout=timeout)

    def wait_exit(self, name: str, timeout: float) -> int:
        try:
            return self.processes[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} still runs after {timeout:.0f}s:\n{self.log_tail(name)}") from None

    def log_tail(self, name: str, lines: int = 40) -> str:
        return tail(self.log_path(name), lines)

    def logs(self) -> list[Path]:
        return sorted(self.workdir.glob("*.log"))

    # --- data ---

    def sql(self, service: str, query: str, params: tuple = ()) -> list[tuple]:
        return self._databases[service].rows(query, params)

    def reconnect(self) -> None:
        """Drop the test's own connections (after a database restart they are dead); the next query reconnects."""
        for database in self._databases.values():
            database.close()

    def scalar(self, service: str, query: str, params: tuple = ()):
        return self._databases[service].scalar(query, params)

    def create_books(self, stock: list[int]) -> list[int]:
        """One book per entry of ``stock`` (its copies on hand), created in catalog; their ids."""
        code = (
            "import json\n"
            "from decimal import Decimal\n"
            "from catalog import services\n"
            "author = services.author_create(name='Fault Drill')\n"
            f"ids = [services.book_create(title=f'Drill book {{n}}', authors=[author], price=Decimal('9.50'), "
            f"on_hand=copies).pk for n, copies in enumerate({stock!r})]\n"
            "print('BOOK_IDS=' + json.dumps(ids))\n"
        )
        result = subprocess.run(
            [PYTHON, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=REPO,
            env=self.env("catalog"),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        match = re.search(r"^BOOK_IDS=(.*)$", result.stdout, re.M)
        assert result.returncode == 0 and match, f"creating books failed:\n{result.stdout}\n{result.stderr}"
        return json.loads(match.group(1))

    def wait_for_products(self, book_ids: list[int]) -> None:
        """orders can sell a book once catalog's BookPublished reached it through Kafka."""
        wait_until(
            lambda: (
                self.scalar(
                    "orders",
                    "SELECT count(*) FROM orders_product WHERE book_id = ANY(%s) AND price IS NOT NULL AND active",
                    (book_ids,),
                )
                == len(book_ids)
            ),
            timeout=SETTLE_TIMEOUT,
            message=f"orders knows books {book_ids}",
        )

    def client(self) -> Client:
        return Client(f"http://127.0.0.1:{self.web_port}")

    def place_order(self, customer: Client, lines: list[dict], *, retry_for: float = 0.0) -> Placed:
        """One checkout; with ``retry_for``, a refusal that says ``Retry-After`` is retried with the same key."""
        started = time.monotonic()
        key = str(uuid.uuid4())
        refused: list[tuple[int, str | None, str | None]] = []
        first_refused_at = None
        while True:
            response = customer.post("/api/orders/", {"lines": lines}, headers={"Idempotency-Key": key}, timeout=30)
            retry_after = response.headers.get("Retry-After")
            if response.status == 201 or not retry_after or time.monotonic() - started > retry_for:
                break
            first_refused_at = first_refused_at or time.monotonic()
            code = response.json().get("code") if "json" in response.headers.get("Content-Type", "") else None
            refused.append((response.status, retry_after, code))
            self.refusals.append(refused[-1])
            # At most 1 s: a more eager client than Retry-After asks, to see how soon the shop answers again.
            time.sleep(min(float(retry_after), 1.0))
        body = response.json() if response.status == 201 else None
        if body is None:
            print(f"faults: checkout answered {response!r}", file=sys.stderr)
        answered = time.monotonic()
        return Placed(
            body["id"] if body else "", response.status, answered - started, refused, first_refused_at, answered
        )

    def customers(self, count: int) -> list[Client]:
        clients = []
        for _ in range(count):
            client = self.client()
            client.token = self.keys.customer_token(uuid.uuid4())
            clients.append(client)
        return clients

    @contextlib.contextmanager
    def outbox_marks_held(self, service: str) -> Iterator[OutboxHold]:
        """Lock the unpublished outbox rows of ``service`` in an open transaction.

        A relay may read and send them (a plain read is not blocked by a row lock) but its
        ``UPDATE ... SET published_at`` waits: the relay is held between the broker's
        acknowledgement and the mark, the window in which a crash makes it send them again.
        """
        connection = postgres.connect(self.urls[service])
        connection.autocommit = False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT event_id::text FROM messaging_outboxmessage WHERE published_at IS NULL "
                    "ORDER BY id FOR UPDATE"
                )
                event_ids = [event_id for (event_id,) in cursor.fetchall()]
            yield OutboxHold(self, service, pid, event_ids)
        finally:
            connection.rollback()
            connection.close()

    # --- progress ---

    def outbox_counts(self, service: str) -> tuple[int, int]:
        """(rows, published rows) of a service's outbox."""
        return self.sql(service, "SELECT count(*), count(published_at) FROM messaging_outboxmessage")[0]

    def settled(self) -> int:
        return self.scalar("orders", "SELECT count(*) FROM orders_order WHERE state IN %s", (SETTLED,))

    def unsettled(self) -> int:
        return self.scalar("orders", "SELECT count(*) FROM orders_order WHERE state NOT IN %s", (SETTLED,))

    def quiescent(self, lost: frozenset[str] = frozenset()) -> bool:
        """Every order settled, every outbox row published, every event (but the ``lost`` ids) in every inbox."""
        if self.unsettled():
            return False
        if any(total != published for total, published in map(self.outbox_counts, SERVICES)):
            return False
        return all(
            self._inbox_pairs(consumer)
            >= {pair for pair in self._expected_inbox_pairs(consumer, producer) if pair[0] not in lost}
            for consumer, producer in (("orders", "catalog"), ("catalog", "orders"))
        )

    def wait_quiescent(self, timeout: float = SETTLE_TIMEOUT, *, lost: frozenset[str] = frozenset()) -> float:
        """Wait until :meth:`quiescent`; ``lost``: event ids a drill lost on purpose (never to arrive)."""
        started = time.monotonic()
        wait_until(
            lambda: self.quiescent(lost),
            timeout=timeout,
            interval=0.2,
            message="every order settled, every event handled",
        )
        return time.monotonic() - started

    # --- the books balance ---

    def assert_each_keys_order(self) -> None:
        """On each events topic, an aggregate's events first appear in the order its outbox committed them.

        Copies a relay sent again after a fault may follow; consumers skip them, so the first copies
        are the order every handler sees.
        """
        for producer in SERVICES:
            first_seen: dict[str, list[str]] = defaultdict(list)
            seen: set[str] = set()
            records = read_records(self.kafka, f"{self.prefix}.{producer}.events")
            for record in sorted(records, key=lambda r: (r.partition, r.offset)):
                event_id = envelope_fields(record)["event_id"]
                if event_id not in seen:
                    seen.add(event_id)
                    first_seen[record.key.decode()].append(event_id)
            committed: dict[str, list[str]] = defaultdict(list)
            for aggregate_id, event_id in self.sql(
                producer, "SELECT aggregate_id, event_id::text FROM messaging_outboxmessage ORDER BY id"
            ):
                committed[aggregate_id].append(event_id)
            assert first_seen == committed, f"{producer}: an aggregate's events left the outbox's order"

    def _expected_inbox_pairs(self, consumer: str, producer: str) -> set[tuple[str, str]]:
        """(event id, handler) for every event ``producer`` published that ``consumer`` handles."""
        from messaging.registry import subscriptions

        handlers = defaultdict(list)
        for subscription in subscriptions((consumer,)):
            event = subscription.event_class
            handlers[(event.event_type, event.event_version)].append(subscription.name)
        assert handlers, f"no handlers of {consumer} registered in the test process (is SERVICE set?)"
        rows = self.sql(producer, "SELECT event_id::text, event_type, event_version FROM messaging_outboxmessage")
        return {(event_id, name) for event_id, kind, version in rows for name in handlers[(kind, version)]}

    def _inbox_pairs(self, consumer: str) -> set[tuple[str, str]]:
        return set(self.sql(consumer, "SELECT event_id::text, handler FROM messaging_inboxentry"))

    def assert_consistent(self, placed: list[Placed]) -> Ledger:
        """The books balance: every count the checkout saga touches agrees, exactly."""
        accepted = {p.order_id for p in placed}
        assert all(p.status == 201 for p in placed), Counter(p.status for p in placed)
        assert len(accepted) == len(placed), "a checkout returned an order id twice"

        orders = dict(self.sql("orders", "SELECT id::text, state FROM orders_order"))
        assert set(orders) == accepted, "orders in the database differ from the orders accepted over HTTP"
        states = Counter(orders.values())
        assert set(states) <= set(SETTLED), f"unsettled orders: {states}"
        confirmed = {order_id for order_id, state in orders.items() if state == "confirmed"}
        rejected = accepted - confirmed

        outbox = {service: self._outbox(service) for service in SERVICES}
        inbox = {
            service: Counter(
                dict(self.sql(service, "SELECT event_type, count(*) FROM messaging_inboxentry GROUP BY 1"))
            )
            for service in SERVICES
        }
        for service in SERVICES:
            total, published = self.outbox_counts(service)
            assert total == published, f"{service}: {total - published} outbox row(s) never published"
            parked = self.sql(service, "SELECT event_type, handler, left(error, 300) FROM messaging_deadletter")
            assert not parked, f"{service} has dead letters: {parked}"

        # orders published one OrderPlaced per order, then confirmed or rejected each once.
        placed_events = self.sql(
            "orders", "SELECT aggregate_id FROM messaging_outboxmessage WHERE event_type = 'orders.OrderPlaced'"
        )
        assert sorted(aggregate for (aggregate,) in placed_events) == sorted(accepted)
        assert outbox["orders"]["orders.OrderPlaced"] == len(accepted)
        assert outbox["orders"]["orders.OrderConfirmed"] == len(confirmed)
        assert outbox["orders"]["orders.OrderRejected"] == len(rejected)

        # catalog applied each OrderPlaced once: one reservation per order, the same outcome as orders saw.
        assert inbox["catalog"]["orders.OrderPlaced"] == len(accepted)
        reservations = dict(self.sql("catalog", "SELECT order_id::text, state FROM catalog_stockreservation"))
        assert set(reservations) == accepted
        assert {o for o, state in reservations.items() if state == "reserved"} == confirmed
        assert {o for o, state in reservations.items() if state == "rejected"} == rejected
        assert outbox["catalog"]["catalog.StockReserved"] == len(confirmed)
        assert outbox["catalog"]["catalog.StockRejected"] == len(rejected)

        # orders applied each answer once.
        assert inbox["orders"]["catalog.StockReserved"] == len(confirmed)
        assert inbox["orders"]["catalog.StockRejected"] == len(rejected)

        # Every event reached every handler of the other service, exactly once (inbox = outbox).
        for consumer, producer in (("orders", "catalog"), ("catalog", "orders")):
            expected, got = self._expected_inbox_pairs(consumer, producer), self._inbox_pairs(consumer)
            assert got == expected, (
                f"{consumer}'s inbox vs {producer}'s outbox: {len(expected - got)} missing, {len(got - expected)} extra"
            )

        # Stock: what is held is exactly what the confirmed orders bought, book by book.
        bought = dict(
            self.sql(
                "orders",
                "SELECT line.book_id, sum(line.quantity) FROM orders_orderline line "
                "JOIN orders_order o ON o.id = line.order_id WHERE o.state = 'confirmed' GROUP BY 1",
            )
        )
        stock = {
            book: (on_hand, reserved)
            for book, on_hand, reserved in self.sql("catalog", "SELECT book_id, on_hand, reserved FROM catalog_stock")
        }
        reserved = {book: held for book, (_, held) in stock.items() if held}
        assert reserved == bought, f"catalog holds {reserved}, confirmed orders bought {bought}"
        held_lines = self.scalar("catalog", "SELECT coalesce(sum(quantity), 0) FROM catalog_reservationline")
        assert held_lines == sum(bought.values())
        # orders' copy of the stock caught up with catalog's.
        copies = dict(self.sql("orders", "SELECT book_id, available FROM orders_product"))
        assert copies == {book: on_hand - held for book, (on_hand, held) in stock.items()}

        return Ledger(
            orders=len(accepted),
            confirmed=len(confirmed),
            rejected=len(rejected),
            reserved_copies=sum(bought.values()),
            outbox=outbox,
            inbox=inbox,
        )

    def _outbox(self, service: str) -> Counter:
        return Counter(dict(self.sql(service, "SELECT event_type, count(*) FROM messaging_outboxmessage GROUP BY 1")))


def consumer_totals(log: str, module: str) -> dict[str, int]:
    """The last progress line of ``run_consumer`` for ``module``: processed, applied, duplicates."""
    found = re.findall(rf"^{module}: (\d+) processed .*?, (\d+) applied, (\d+) duplicates", log, re.M)
    assert found, f"no progress line for {module} in the consumer's log"
    processed, applied, duplicates = map(int, found[-1])
    return {"processed": processed, "applied": applied, "duplicates": duplicates}
