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
reached every handler exactly once, and orders, outbox, inbox and stock agree to the unit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import psycopg2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.harness import Client, free_port, tail, wait_until

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SERVICES = ("orders", "catalog")
SETTLED = ("confirmed", "rejected")
#: Seconds a process may take to start, and the saga to settle once nothing stands in its way.
START_TIMEOUT = float(os.environ.get("QUIRE_FAULTS_START_TIMEOUT", "60"))
SETTLE_TIMEOUT = float(os.environ.get("QUIRE_FAULTS_SETTLE_TIMEOUT", "90"))
#: ``2`` keeps kafka-python's own log in the relays' and consumers' logs (to diagnose a failed drill).
VERBOSITY = os.environ.get("QUIRE_FAULTS_VERBOSITY", "1")
JWT_ISSUER = "quire-accounts"  # settings.SIMPLE_JWT["ISSUER"]'s default
PR_SET_PDEATHSIG = 1

# Quire's own settings are set per process; what the test run itself has must not leak in.
_QUIRE_NAMES = re.compile(
    r"^(SERVICE|EVENT_TRANSPORT|KAFKA_\w+|QUIRE_VAR_DIR|STATIC_ROOT|DEBUG|SECRET_KEY|(\w+_)?DATABASE_URL|JWT_\w+|"
    r"MESSAGING_\w+|DATABASE_CONN_MAX_AGE|PORT)$"
)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # A test run that is killed must not leave consumers, relays or web servers behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _connect(url: str, dbname: str | None = None):
    parts = urllib.parse.urlsplit(url)
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        dbname=dbname or parts.path.lstrip("/"),
    )
    connection.autocommit = True
    return connection


def _url_with_database(url: str, dbname: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{dbname}"))


def _dev_env(script: str) -> dict[str, str]:
    output = subprocess.run(
        ["bash", f"scripts/dev/{script}", "env"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return {m.group(1): m.group(2).strip("'\"") for m in re.finditer(r"^export (\w+)=(.*)$", output, re.M)}


@dataclass(frozen=True)
class Infra:
    """The shared servers: a PostgreSQL URL (any database on it) and Kafka's bootstrap servers."""

    database_url: str
    kafka: str


def shared_infra() -> Infra:
    """Start (idempotently) the dev PostgreSQL and Kafka; the caller's variables win, as in ``make test``."""
    for script in ("postgres.sh", "kafka.sh"):
        subprocess.run(["bash", f"scripts/dev/{script}", "start"], cwd=REPO, check=True, capture_output=True)
    found = {**_dev_env("postgres.sh"), **_dev_env("kafka.sh")}
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        database_url = found["DATABASE_URL"]
    return Infra(database_url, os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or found["KAFKA_BOOTSTRAP_SERVERS"])


@dataclass(frozen=True)
class JwtKeys:
    private_pem: str
    public_file: Path

    @classmethod
    def create(cls, directory: Path) -> JwtKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_file = directory / "jwt-public.pem"
        public_file.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return cls(private_pem, public_file)

    def customer_token(self, customer_id: uuid.UUID) -> str:
        """An access token as accounts would sign it: what orders' JWT authentication accepts."""
        now = int(time.time())
        claims = {
            "token_type": "access",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "iss": JWT_ISSUER,
            "sub": str(customer_id),
            "role": "customer",
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256")


# --- a broker of one's own ---------------------------------------------------------------------------


class PrivateKafka:
    """A second single-node broker (``scripts/dev/kafka.sh`` with its own state dir and ports).

    A drill may stop it without disturbing the shared broker other tests use. The jars of the
    shared state dir are linked in, so no download is needed; without them ``kafka.sh`` resolves
    them from the local Maven repository.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items() if name != "KAFKA_BOOTSTRAP_SERVERS"}
        self.env.update(
            QUIRE_STATE_DIR=str(state_dir),
            QUIRE_KAFKA_PORT=str(self.port),
            QUIRE_KAFKA_CONTROLLER_PORT=str(self.controller_port),
            QUIRE_KAFKA_HEAP_OPTS="-Xms128m -Xmx512m",
        )
        self._link_shared_jars()

    def _link_shared_jars(self) -> None:
        shared_root = Path(os.environ.get("QUIRE_STATE_DIR") or Path.home() / ".cache" / "quire")
        shared = shared_root / "kafka" / "jars"
        marker = shared / ".quire-kafka-version"
        if not marker.is_file():
            return
        jars = self.state_dir / "kafka" / "jars"
        jars.mkdir(parents=True)
        for jar in shared.glob("*.jar"):
            (jars / jar.name).symlink_to(jar)
        shutil.copy(marker, jars / marker.name)  # kafka.sh trusts the jars while the pom matches it

    def _script(self, command: str) -> None:
        result = subprocess.run(
            ["bash", "scripts/dev/kafka.sh", command], cwd=REPO, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} (private broker) exited {result.returncode}:\n{result.stderr}")

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def log_tail(self) -> str:
        return tail(self.state_dir / "kafka" / "logs" / "server.log", 30)


# --- the shop -----------------------------------------------------------------------------------------


@dataclass
class Placed:
    order_id: str
    status: int
    seconds: float


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
            what=f"sessions {pids} ended",
        )


class SplitShop:
    """orders and catalog as separate processes, each started, killed and restarted at will."""

    def __init__(self, *, infra: Infra, keys: JwtKeys, workdir: Path, kafka: str | None = None) -> None:
        self.run_id = uuid.uuid4().hex[:10]
        self.prefix = f"faults-{self.run_id}"
        self.kafka = kafka or infra.kafka
        self.admin_url = infra.database_url
        self.keys = keys
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.databases = {service: f"quire_faults_{self.run_id}_{service}" for service in SERVICES}
        self.urls = {service: _url_with_database(self.admin_url, name) for service, name in self.databases.items()}
        self.processes: dict[str, subprocess.Popen] = {}
        self.web_port = free_port()
        self._connections: dict[str, object] = {}
        self._created = False

    # --- lifecycle ---

    def create(self) -> None:
        """Fresh databases, migrated by each service's own ``migrate`` (both at once)."""
        admin = _connect(self.admin_url, "postgres")
        try:
            with admin.cursor() as cursor:
                for name in self.databases.values():
                    cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
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
        running = [process for process in self.processes.values() if process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                connection.close()
        if self._created:
            admin = _connect(self.admin_url, "postgres")
            try:
                with admin.cursor() as cursor:
                    for name in self.databases.values():
                        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                admin.close()
        self._delete_broker_state()

    def _delete_broker_state(self) -> None:
        """Best effort: the run's topics and consumer groups are of no use after it."""
        try:
            from kafka.admin import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.kafka.split(","), request_timeout_ms=10_000)
            try:
                topics = [topic for topic in admin.list_topics() if topic.startswith(self.prefix + ".")]
                if topics:
                    admin.delete_topics(topics)
                groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(self.prefix + ".")]
                if groups:
                    admin.delete_groups(groups)
            finally:
                admin.close()
        except Exception as error:  # the broker may be gone already (a private one); the result stands
            print(f"faults: could not delete {self.prefix}.* on {self.kafka}: {error!r}", file=sys.stderr)

    # --- processes ---

    def env(self, service: str) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not _QUIRE_NAMES.match(name)}
        url = self.urls[service]
        env.update(
            SERVICE=service,
            EVENT_TRANSPORT="kafka",
            KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            KAFKA_TOPIC_PREFIX=self.prefix,
            DATABASE_URL=url,
            **{f"{service.upper()}_DATABASE_URL": url},
            QUIRE_VAR_DIR=str(self.workdir / "var"),
            JWT_PUBLIC_KEY_FILE=str(self.keys.public_file),
            PYTHONUNBUFFERED="1",
        )
        return env

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
        log = self.log_path(name).open("ab")
        log.write(f"\n=== {time.strftime('%H:%M:%S')} start {' '.join(argv[1:])}\n".encode())
        log.flush()
        with log:
            self.processes[name] = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        return self.processes[name]

    def start_all(self) -> None:
        for name in ("orders-web", "orders-relay", "orders-consumer", "catalog-relay", "catalog-consumer"):
            if name not in self.processes:
                self.start(name)
        web = self.processes["orders-web"]

        def web_answers() -> bool:
            assert web.poll() is None, f"orders-web exited with {web.returncode}:\n{self.log_tail('orders-web')}"
            with contextlib.suppress(OSError):
                return self.client().get("/api/", timeout=2).status == 200
            return False

        wait_until(web_answers, timeout=START_TIMEOUT, what="orders-web answers /api/")

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
        connection = self._connections.get(service)
        if connection is None or connection.closed:
            connection = self._connections[service] = _connect(self.urls[service])
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def scalar(self, service: str, query: str, params: tuple = ()):
        return self.sql(service, query, params)[0][0]

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
            what=f"orders knows books {book_ids}",
        )

    def client(self) -> Client:
        return Client(f"http://127.0.0.1:{self.web_port}")

    def place_order(self, customer: Client, lines: list[dict]) -> Placed:
        started = time.monotonic()
        response = customer.post(
            "/api/orders/", {"lines": lines}, headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=30
        )
        body = response.json() if response.status == 201 else None
        if body is None:
            print(f"faults: checkout answered {response!r}", file=sys.stderr)
        return Placed(body["id"] if body else "", response.status, time.monotonic() - started)

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
        connection = _connect(self.urls[service])
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

    def quiescent(self) -> bool:
        """Every order settled, every outbox row published, every event in every handler's inbox."""
        if self.unsettled():
            return False
        if any(total != published for total, published in map(self.outbox_counts, SERVICES)):
            return False
        return all(
            self._inbox_pairs(consumer) >= self._expected_inbox_pairs(consumer, producer)
            for consumer, producer in (("orders", "catalog"), ("catalog", "orders"))
        )

    def wait_quiescent(self, timeout: float = SETTLE_TIMEOUT) -> float:
        started = time.monotonic()
        wait_until(self.quiescent, timeout=timeout, interval=0.2, what="every order settled, every event handled")
        return time.monotonic() - started

    # --- the books balance ---

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


# --- load -------------------------------------------------------------------------------------------


class OrderStream(threading.Thread):
    """Customers checking out one order after another until :meth:`finish` or ``limit`` orders.

    Lines are drawn from ``books`` (1 or 2 books, 1 to 3 copies each) with a fixed seed, so a
    scarce book runs out and some orders are rejected while most are confirmed.
    """

    def __init__(
        self,
        shop: SplitShop,
        books: list[int],
        *,
        limit: int | None = None,
        customers: int = 4,
        pause: float = 0.0,
        seed: int = 7,
    ):
        super().__init__(name="order-stream", daemon=True)
        self.shop = shop
        self.books = books
        self.customers = shop.customers(customers)
        self.pause = pause
        self.random = random.Random(seed)
        self.placed: list[Placed] = []
        self._finish = threading.Event()
        self.limit = limit

    def lines(self) -> list[dict]:
        chosen = self.random.sample(self.books, self.random.choice((1, 2)))
        return [{"book_id": book, "quantity": self.random.randint(1, 3)} for book in chosen]

    def run(self) -> None:
        while not self._finish.is_set() and (self.limit is None or len(self.placed) < self.limit):
            customer = self.customers[len(self.placed) % len(self.customers)]
            self.placed.append(self.shop.place_order(customer, self.lines()))
            if self.pause:
                self._finish.wait(self.pause)  # a steady pace of checkouts, not a wait for a condition

    def finish(self, timeout: float = 60) -> list[Placed]:
        """Stop after the checkout in hand; every order placed."""
        self._finish.set()
        return self.complete(timeout)

    def complete(self, timeout: float = 60) -> list[Placed]:
        """Wait for the stream to end by itself (its ``limit``); every order placed."""
        self.join(timeout)
        assert not self.is_alive(), "the order stream did not stop"
        return self.placed

    @property
    def count(self) -> int:
        return len(self.placed)


def read_records(bootstrap: str, topic: str) -> list:
    """Every record on ``topic`` now (from the beginning up to the current end of each partition)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        assert partitions, f"topic {topic} does not exist"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within 30s"
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed, per (topic, partition)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group) or {}
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def envelope_fields(record) -> dict:
    return json.loads(record.value)


def consumer_totals(log: str, module: str) -> dict[str, int]:
    """The last progress line of ``run_consumer`` for ``module``: processed, applied, duplicates."""
    found = re.findall(rf"^{module}: (\d+) processed .*?, (\d+) applied, (\d+) duplicates", log, re.M)
    assert found, f"no progress line for {module} in the consumer's log"
    processed, applied, duplicates = map(int, found[-1])
    return {"processed": processed, "applied": applied, "duplicates": duplicates}


@contextlib.contextmanager
def timed(label: str, figures: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        figures[label] = round(time.monotonic() - started, 1)
