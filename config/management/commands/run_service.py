"""``run_service``: one command starts a whole Quire service and supervises its processes.

A service is what one deployment unit of Quire runs for the modules it serves
(``SERVICE``): the web server (gunicorn), and with ``EVENT_TRANSPORT=kafka`` the
outbox relay (``run_relay``) and, if the service handles other modules' events, the
consumer (``run_consumer``). With the in-process transport the web process relays and
handles its own events, so only gunicorn runs.

Supervision policy: a child that exits while the service runs is logged and restarted
after a backoff (1 s, 2 s, 4 s ... at most 30 s). A child that keeps dying (more than
``--max-restarts`` times within ``RESTART_WINDOW_SECONDS``) makes the whole service stop
its other children and exit non-zero, so that the process manager above it (systemd,
Kubernetes, ``scripts/services.sh``) sees a failed service rather than a half-working one.
``--max-restarts 0`` fails fast on the first death.

SIGTERM and SIGINT are forwarded to every child as SIGTERM (gunicorn then finishes its
requests, the relay and the consumer finish their batch); children still alive after
``--stop-timeout`` seconds are killed. Children also get SIGTERM if this supervisor dies
without cleaning up (Linux parent-death signal), so no orphan keeps a port or a
consumer-group membership.

Liveness: the relay and the consumer keep a heartbeat file (one per child, under
``VAR_DIR/heartbeat/`` unless ``MESSAGING_<ROLE>_HEARTBEAT_FILE`` names one). A child that is
alive but whose heartbeat is older than its stall limit plus grace (it should have exited by
itself) is killed, which counts as a death. Every child is told both files (empty for a role this
service does not run), so that the web server's ``/health/ready/`` reports their ages. A child
that exits has its live gauges dropped from the metrics directory (``mark_process_dead``). With
``orders`` served, a ``sagas`` child runs ``orders_resolve_pending --every
ORDERS_PENDING_CHECK_SECONDS`` (``--no-sagas``: a CronJob does).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import multiprocess

from config import keys
from messaging.conf import messaging_settings
from messaging.kafka.liveness import WEDGED_GRACE_SECONDS, heartbeat_age
from messaging.kafka.topics import consumer_group, events_topic
from messaging.registry import subscribed_producers, subscriptions

logger = logging.getLogger(__name__)

RESTART_WINDOW_SECONDS = 300.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Not Linux: no parent-death signal, but the supervisor's own signal forwarding still applies.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    env: dict[str, str] | None = None
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    #: The child's heartbeat file and the age past which it is stuck (relay, consumer).
    heartbeat: str | None = None
    heartbeat_limit: float = 0.0
    started_at: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent)
        self.restart_at = None
        self.started_at = time.monotonic()

    def stuck_for(self, now: float) -> float | None:
        """Seconds since its last heartbeat, if older than its limit (and it has run that long)."""
        if not self.heartbeat or self.heartbeat_limit <= 0 or now - self.started_at <= self.heartbeat_limit:
            return None
        age = heartbeat_age(self.heartbeat)
        age = now - self.started_at if age is None else min(age, now - self.started_at)
        return age if age > self.heartbeat_limit else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Command(BaseCommand):
    help = (
        "Start this process's whole service: gunicorn on 127.0.0.1:PORT, plus with EVENT_TRANSPORT=kafka "
        "the outbox relay (run_relay) and, if the served modules handle events, the consumer (run_consumer). "
        "Supervises them: a child that dies is restarted with backoff; one that keeps dying stops the service "
        "with a non-zero exit. SIGTERM/SIGINT stop every child gracefully."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address gunicorn binds (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port gunicorn binds (default 8000).")
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.WEB_WORKERS or None,
            help="gunicorn worker processes (default: WEB_WORKERS, else 1 with the in-process transport, whose "
            "web process relays its own outbox, and 2 with Kafka).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.WEB_THREADS,
            help="Threads per gunicorn worker (default: WEB_THREADS, 4).",
        )
        parser.add_argument("--no-relay", action="store_true", help="Do not start run_relay (Kafka only).")
        parser.add_argument("--no-consumer", action="store_true", help="Do not start run_consumer (Kafka only).")
        parser.add_argument(
            "--no-expiry",
            action="store_true",
            help="Do not start orders_expire_unpaid (when a CronJob or another replica runs it).",
        )
        parser.add_argument(
            "--no-sagas",
            action="store_true",
            help="Do not start orders_resolve_pending (when a CronJob runs it, or another replica does).",
        )
        parser.add_argument(
            "--migrate", action="store_true", help="Run `migrate` on every database of this process first."
        )
        parser.add_argument(
            "--max-restarts",
            type=int,
            default=5,
            help=f"Restarts of one child allowed within {RESTART_WINDOW_SECONDS:.0f}s before the service gives "
            "up and exits non-zero (default 5; 0 = fail fast).",
        )
        parser.add_argument(
            "--plan",
            action="store_true",
            help="Print, as JSON, the children this service would start (each one's command, and for the relay "
            "and the consumer the modules, topics and consumer groups they cover), then exit without starting any.",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=25.0,
            help="Seconds children get to stop after SIGTERM before they are killed (default 25).",
        )

    def handle(self, *args, **options):
        if options["plan"]:
            self.stop_timeout = options["stop_timeout"]
            self.stdout.write(json.dumps(self.plan(self.build_children(options)), indent=2))
            return
        self.prepare_metrics_directory(options["port"])
        if options["migrate"]:
            call_command("migrate", interactive=False, verbosity=max(0, options["verbosity"] - 1))
        self.stop_timeout = options["stop_timeout"]
        self.max_restarts = options["max_restarts"]
        self.children = self.build_children(options)
        self.stopping: int | None = None  # the signal that asked us to stop
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                child.start()
                self.log(f"started {child.name} (pid {child.pid}): {' '.join(child.argv[1:])}")
            failed = self.supervise()
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed:
            raise CommandError(f"{failed} kept dying; the service stopped.", returncode=1)
        self.log("stopped")

    def prepare_metrics_directory(self, port: int) -> None:
        """One empty prometheus-client multiprocess directory for this service's children.

        Every child (each gunicorn worker, the relay, the consumer) writes its metrics there, so
        the service's /metrics adds them up. Emptied at start: a restarted service counts anew,
        as a single process would. ``PROMETHEUS_MULTIPROC_DIR`` set by the caller is used as is.
        """
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            directory = str(Path(settings.VAR_DIR) / "metrics" / f"{settings.SERVICE.replace(',', '+')}-{port}")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)

    def children_env(self) -> dict[str, str]:
        """The children's environment: production settings (``DEBUG=false``) unless ``DEBUG`` is set.

        A service is what production runs, so that is what it measures and tests by default. Without
        ``SECRET_KEY`` and JWT keys (a developer's machine) it uses this machine's own, kept under
        ``QUIRE_VAR_DIR``: the secret made once there, the key pair that development settings made.
        """
        env = dict(os.environ)
        if "DEBUG" in env:  # told otherwise (the environment, or .env, which settings loaded into it)
            return env
        env["DEBUG"] = "false"
        var_dir = Path(settings.VAR_DIR)
        if not env.get("SECRET_KEY"):
            env["SECRET_KEY"] = keys.local_secret_key(var_dir)
        if not (env.get("JWT_PUBLIC_KEY") or env.get("JWT_PUBLIC_KEY_FILE")):
            env["JWT_PUBLIC_KEY_FILE"] = str(var_dir / "jwt-public.pem")
            if not (env.get("JWT_PRIVATE_KEY") or env.get("JWT_PRIVATE_KEY_FILE")):
                env["JWT_PRIVATE_KEY_FILE"] = str(var_dir / "jwt-private.pem")
        self.log("production settings (DEBUG=false; set DEBUG=true for development mode)")
        return env

    def build_children(self, options) -> list[Child]:
        python, manage = sys.executable, str(settings.BASE_DIR / "manage.py")
        env = self.children_env()
        kafka = settings.EVENT_TRANSPORT == "kafka"
        workers = options["workers"] or (2 if kafka else 1)
        if workers < 1 or options["threads"] < 1:
            raise CommandError("--workers and --threads must be at least 1.")
        web = [
            python,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--config=python:config.gunicorn",
            f"--bind={options['host']}:{options['port']}",
            f"--workers={workers}",
            f"--threads={options['threads']}",
            "--worker-class=gthread",
            f"--graceful-timeout={max(1, int(self.stop_timeout) - 5)}",
            "--timeout=60",
            "--access-logfile=-",
            "--error-logfile=-",
            f"--name=quire-{settings.SERVICE}",
            f"--chdir={settings.BASE_DIR}",
            # Several services run side by side on one host; a shared ~/.gunicorn socket would clash.
            "--no-control-socket",
        ]
        children = [Child("web", web, env=env)]
        if kafka and not options["no_relay"]:
            children.append(self.watched(Child("relay", [python, manage, "run_relay"], env=env), options["port"]))
        if kafka and not options["no_consumer"] and subscriptions(settings.SERVED_MODULES):
            children.append(self.watched(Child("consumer", [python, manage, "run_consumer"], env=env), options["port"]))
        # Unpaid orders' reservations expire (orders/holds.py): the sweep runs beside the service that owns them.
        expiry_every = settings.ORDERS_PAYMENT_CHECK_SECONDS
        if "orders" in settings.SERVED_MODULES and not options["no_expiry"] and expiry_every > 0:
            expiry = [python, manage, "orders_expire_unpaid", "--every", f"{expiry_every:g}"]
            children.append(Child("expiry", expiry, env=env))
        # Checkouts whose saga stalled are re-announced, then rejected (orders_resolve_pending).
        sagas_every = settings.ORDERS_PENDING_CHECK_SECONDS
        if "orders" in settings.SERVED_MODULES and not options["no_sagas"] and sagas_every > 0:
            sagas = [python, manage, "orders_resolve_pending", "--every", f"{sagas_every:g}"]
            children.append(Child("sagas", sagas, env=env))
        # Every child learns the heartbeat files of the relay and consumer this service runs (and an empty
        # name for a role it does not): the web server's /health/ready/ reads them (messaging/kafka/health.py).
        heartbeats = {f"MESSAGING_{role.upper()}_HEARTBEAT_FILE": "" for role in ("relay", "consumer")}
        heartbeats.update({f"MESSAGING_{c.name.upper()}_HEARTBEAT_FILE": c.heartbeat for c in children if c.heartbeat})
        for child in children:
            child.env = {**child.env, **heartbeats}
        return children

    def plan(self, children: list[Child]) -> dict:
        """What this service runs, for an operator to check a grouping before starting it (``--plan``).

        The relay and the consumer are planned as ``run_relay`` and ``run_consumer`` will run them:
        every served module's outbox, and a consumer group per served module that handles events.
        """
        served = tuple(settings.SERVED_MODULES)
        planned = []
        for child in children:
            entry = {"name": child.name, "argv": child.argv[1:]}
            if child.name == "relay":
                entry["outboxes"] = {module: events_topic(module) for module in served}
            elif child.name == "consumer":
                entry["groups"] = {
                    module: {
                        "group": consumer_group(module),
                        "topics": sorted(events_topic(producer) for producer in subscribed_producers(module)),
                    }
                    for module in served
                    if subscribed_producers(module)
                }
            planned.append(entry)
        return {
            "service": settings.SERVICE,
            "modules": list(served),
            "transport": settings.EVENT_TRANSPORT,
            "children": planned,
        }

    def watched(self, child: Child, port: int) -> Child:
        """Give a relay or consumer child a heartbeat file of its own, and the age at which it is stuck."""
        role = child.name.upper()
        child.heartbeat = getattr(messaging_settings, f"{role}_HEARTBEAT_FILE") or str(
            Path(settings.VAR_DIR) / "heartbeat" / f"{settings.SERVICE.replace(',', '+')}-{port}-{child.name}"
        )
        stall = float(getattr(messaging_settings, f"{role}_STALL_EXIT_SECONDS"))
        # The child exits by itself at its stall limit (plus its own grace when wedged in a call): this is the backstop.
        child.heartbeat_limit = stall + 2 * WEDGED_GRACE_SECONDS if stall > 0 else 0.0
        return child

    def on_signal(self, signum, frame) -> None:
        if self.stopping is None:
            self.log(f"got {signal.Signals(signum).name}: stopping")
        self.stopping = signum

    def supervise(self) -> str | None:
        """Watch the children until asked to stop; the name of a child that kept dying, else None."""
        while self.stopping is None:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.start()
                        self.log(f"restarted {child.name} (pid {child.pid})")
                    continue
                code = child.process.poll()
                if code is None:
                    stuck = child.stuck_for(now)
                    if stuck is not None:
                        self.log(f"{child.name} (pid {child.pid}) made no progress for {stuck:.0f}s: killing it")
                        child.process.kill()
                        child.process.wait()
                    continue
                self.reaped(child)
                child.deaths.append(now)
                while child.deaths and now - child.deaths[0] > RESTART_WINDOW_SECONDS:
                    child.deaths.popleft()
                if len(child.deaths) > self.max_restarts:
                    self.log(f"{child.name} exited with {code}, {len(child.deaths)} time(s) recently: giving up")
                    return child.name
                delay = min(BACKOFF_FIRST_SECONDS * 2 ** (len(child.deaths) - 1), BACKOFF_MAX_SECONDS)
                self.log(f"{child.name} exited with {code}: restarting in {delay:.0f}s")
                child.restart_at = now + delay
            time.sleep(POLL_SECONDS)
        return None

    def stop_all(self) -> None:
        running = [child for child in self.children if child.running()]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} (pid {child.pid}) did not stop within {self.stop_timeout:.0f}s: killing it")
                child.process.kill()
                child.process.wait()
            self.reaped(child)

    def reaped(self, child: Child) -> None:
        """A child exited: drop its live gauges (its consumer lag ...) from the service's metrics directory.

        Counters and histograms of a dead process stay (a service's totals do not go back); a
        ``live*`` gauge is the state of a running process, and a dead one's would be reported as
        current for good. gunicorn's ``child_exit`` does the same for its workers (config/gunicorn.py).
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and child.pid is not None:
            multiprocess.mark_process_dead(child.pid)

    def log(self, message: str) -> None:
        # Through logging, so that the supervisor's lines share the format of its children's.
        logger.info("run_service[%s] %s", settings.SERVICE, message)
