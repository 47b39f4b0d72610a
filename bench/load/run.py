"""One load run per topology: start the shop, seed it, register customers, run locust, measure CPU, stop.

Usage (from the repository root; ``bench/load/run.sh`` is the same command)::

    bench/load/run.sh one-process services [--users 20] [--spawn-rate 5] [--time 60s]
                      [--data goodbooks|demo] [--out DIR] [--docs]

For each topology named, in turn:

1. the shop starts as the end-to-end suite starts it (``tests/e2e/harness.py``): ``one-process`` is
   ``manage.py run_service`` on SQLite files in a temporary directory, events in-process;
   ``services`` is ``scripts/services.sh`` (the four services on PostgreSQL and Kafka behind the
   nginx gateway) on free ports with fresh databases and a Kafka topic prefix of its own, all dropped
   afterwards; ``grouped`` is the same with ``accounts+catalog+orders`` and ``recommendations``.
   PostgreSQL and Kafka are ``scripts/dev``'s (``QUIRE_STATE_DIR``, ``QUIRE_PG_PORT``,
   ``QUIRE_KAFKA_PORT`` choose which), started if need be and stopped afterwards if this run started them.
   The shop runs with its abuse limits off (:data:`LOAD_ENV`): every user comes from one address;
2. it is seeded with the real goodbooks-10k books (``import_catalog``, read from ``../shared/data``)
   or the demo shop (``seed_demo``), and the run waits until orders and recommendations know every
   book (in the split shop they learn them through Kafka);
3. one customer per user is registered and signed in (not measured: a password hash is ~0.5 s of CPU);
4. locust runs headless for ``--time`` (``bench/load/locustfile.py``; CSV with ``--csv-full-history``),
   while the CPU seconds of the shop's process trees, the gateway's, PostgreSQL's and Kafka's are
   sampled every second (``bench/load/cpu.py``);
5. the shop stops; its logs are kept in the topology's directory.

Everything goes to ``var/load/<date-time>/<topology>/`` (``--out`` to choose); at the end the figures
and the summary table (``bench/load/plot.py``) cover every topology in that directory, with requests
per Quire CPU-second and each topology's ratio to one process. ``--docs`` also writes the comparison
figure into ``docs/load/`` and the load section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent), str(REPO)]  # cpu, plot; bench/environment; tests.e2e.harness
# The harness bounds each manage.py command by this; importing 10,000 books on a busy machine takes minutes.
os.environ.setdefault("QUIRE_E2E_START_TIMEOUT", "900")

import plot  # noqa: E402 - bench/load/plot.py
from cpu import Group, Sampler, listener_pid  # noqa: E402 - bench/load/cpu.py
from environment import BOOKS_CSV  # noqa: E402 - bench/environment.py

from tests.e2e import harness  # noqa: E402 - the end-to-end suite's shop, started the same way
from tests.support import kafka, postgres  # noqa: E402
from tests.support.http import expect  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

TOPOLOGIES = {
    "one-process": lambda: harness.one_process_shop(extra_env=LOAD_ENV),
    "services": lambda: harness.services_shop(extra_env=lambda workdir, env: LOAD_ENV),
    "grouped": lambda: harness.services_shop(
        extra_env=lambda workdir, env: LOAD_ENV, services="accounts+catalog+orders recommendations", topology="grouped"
    ),
}
#: The shop's environment for a load run: its abuse limits off, because every user comes from one
#: address and each customer buys far more than a person would (docs/benchmarks.md says so too).
LOAD_ENV = {
    "THROTTLE_ENABLED": "false",  # registration: 20 per hour and address; sign-in: 20 per minute
    "ORDERS_MAX_UNPAID_COPIES_PER_BOOK": "0",  # the caps on unpaid copies (a payment may fail or lag)
    "ORDERS_MAX_UNPAID_COPIES": "0",
    "PASSWORD_HASH_WAIT_SECONDS": "120",  # registrations queue for the hashing slots rather than get a 503
}
CAUGHT_UP_TIMEOUT = 900.0
CUSTOMER_PASSWORD_SUFFIX = "-Load-9"  # with a random part: each run's customers have their own password


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} load: {message}", file=sys.stderr, flush=True)


def seconds_of(duration: str) -> float:
    """locust's ``--run-time`` format (``90``, ``60s``, ``2m``, ``1h30m``) in seconds."""
    if duration.isdigit():
        return float(duration)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    if not parts or not any(parts.groups()):
        raise SystemExit(f"run.py: --time {duration!r} is not a duration: set it like 60s, 2m or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


# --- seeding -------------------------------------------------------------------------------------


def seed(shop: harness.Shop, options) -> str:
    """Books (and with the demo shop, customers and orders) through the shop's own commands; what was seeded."""
    if options.data == "demo":
        # In the split shop catalog seeds the books and accounts the customers; orders only where one
        # process serves all three.
        for module in ("catalog", "accounts"):
            shop.manage(module, "seed_demo", "--if-empty")
        return "the demo shop (`seed_demo`: 300 books in 14 genres; in one process also its customers' orders)"
    shop.manage("catalog", "import_catalog", str(BOOKS_CSV), "--stock", str(options.stock))
    return f"the real goodbooks-10k books (`import_catalog books.csv --stock {options.stock}`: 10,000 books, no genres)"


def active_count(shop: harness.Shop, module: str, model: str) -> int:
    code = (
        "from django.apps import apps; "
        f"print(apps.get_model({module!r}, {model!r}).objects.filter(active=True).count())"
    )
    output = shop.manage(module, "shell", "--no-imports", "-c", code).stdout
    return int(re.findall(r"^\d+$", output, re.M)[-1])


def wait_caught_up(shop: harness.Shop) -> int:
    """Wait until orders and recommendations know every active book of catalog; the number of books."""
    books = active_count(shop, "catalog", "Book")

    def known() -> bool:
        return (
            active_count(shop, "orders", "Product") >= books
            and active_count(shop, "recommendations", "RecoBook") >= books
        )

    wait_until(known, timeout=CAUGHT_UP_TIMEOUT, message=f"orders and recommendations know catalog's {books} books")
    return books


def register_customers(shop: harness.Shop, count: int, run_id: str) -> list[dict]:
    """``count`` new customers, registered and signed in (email, password, refresh token each)."""

    def register(number: int) -> dict:
        client = shop.client()
        email = f"load-{run_id}-{number:04d}@load.example"
        password = secrets.token_urlsafe(12) + CUSTOMER_PASSWORD_SUFFIX
        expect(client.post("/api/accounts/register/", {"email": email, "password": password, "name": "Load"}), 202)
        tokens = expect(client.post("/api/accounts/token/", {"email": email, "password": password}), 200)
        return {"email": email, "password": password, "refresh": tokens["refresh"]}

    # A few at a time: each process hashes PASSWORD_HASH_CONCURRENCY passwords at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(register, range(count)))


# --- what to measure -------------------------------------------------------------------------------


def port_of(url: str) -> int:
    return urllib.parse.urlsplit(url if "//" in url else f"//{url}").port


def server_groups(topology: str, shop: harness.Shop) -> list[Group]:
    """The process trees whose CPU a run measures: the shop's own, and the gateway, PostgreSQL and Kafka."""
    if topology == "one-process":
        port = str(port_of(shop.base_url))
        supervisor = next(
            process.pid
            for process in psutil.process_iter(["cmdline"])
            if "run_service" in (cmdline := process.info["cmdline"] or [])
            and "--port" in cmdline
            and cmdline[cmdline.index("--port") + 1] == port
        )
        return [Group("shop", lambda: [("all", supervisor)], per_role=True)]
    state = shop.logs[0].parent  # QUIRE_SERVICES_DIR: <service>.pid, nginx/nginx.pid
    services = [(path.stem, int(path.read_text())) for path in sorted(state.glob("*.pid"))]
    gateway = int((state / "nginx" / "nginx.pid").read_text())
    servers = {
        "postgres": listener_pid(port_of(postgres.server_url())),
        "kafka": listener_pid(port_of(kafka.bootstrap())),
    }
    groups = [Group("shop", lambda: services, per_role=True), Group("gateway", lambda: [("nginx", gateway)])]
    for name, pid in servers.items():
        if pid is None:
            log(f"no process listens for {name}: its CPU is not measured")
            continue
        groups.append(Group(name, lambda name=name, pid=pid: [(name, pid)]))
    return groups


def run_locust(shop: harness.Shop, options, out: Path, customers_file: Path) -> tuple[float, float, float]:
    """locust, headless, for ``--time``: (started, ended, its CPU seconds)."""
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--only-summary",
        f"--users={options.users}",
        f"--spawn-rate={options.spawn_rate}",
        f"--run-time={options.time}",
        # Users finish the task they are in (a checkout waits for its order to settle), for at most this long.
        "--stop-timeout=35",
        f"--host={shop.base_url}",
        f"--csv={out / 'locust'}",
        "--csv-full-history",
        "--exit-code-on-error=0",  # failures are results (in the CSV), not a failed run
        f"--customers-file={customers_file}",
        f"--settle-csv={out / 'settle.csv'}",
        f"--sign-in={options.sign_in}",
        f"--think-min={options.think[0]}",
        f"--think-max={options.think[1]}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with (out / "locust.log").open("w") as output:
        result = subprocess.run(
            argv, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, timeout=seconds_of(options.time) + 300
        )
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or not (out / "locust_stats.csv").exists():
        raise SystemExit(f"run.py: locust exited {result.returncode} (see {out / 'locust.log'})")
    return started, ended, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_topology(topology: str, options, run_dir: Path) -> None:
    out = run_dir / topology
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    run_id = uuid.uuid4().hex[:8]
    began = time.monotonic()
    log(f"{topology}: starting the shop")
    with TOPOLOGIES[topology]() as shop:
        try:
            log(f"{topology}: up at {shop.base_url} after {time.monotonic() - began:.0f}s; seeding ({options.data})")
            data = seed(shop, options)
            books = wait_caught_up(shop)
            log(f"{topology}: {books} books known to every module; registering {options.users} customers")
            customers_file = out / "customers.json"
            customers_file.write_text(json.dumps(register_customers(shop, options.users, run_id), indent=1))
            sampler = Sampler(server_groups(topology, shop), interval=1.0)
            load_start = os.getloadavg()
            log(f"{topology}: locust, {options.users} users for {options.time}")
            sampler.start()
            try:
                started, ended, locust_cpu = run_locust(shop, options, out, customers_file)
            finally:
                sampler.stop()
            sampler.write_csv(out / "cpu.csv")
            used = sampler.used()
            summary = {
                "topology": topology,
                "users": options.users,
                "spawn_rate": options.spawn_rate,
                "run_time": options.time,
                "think": options.think,
                "sign_in": options.sign_in,
                "data": options.data,
                "data_description": data,
                "books": books,
                "base_url": shop.base_url,
                "started_at": started,
                "ended_at": ended,
                "wall_seconds": ended - started,
                "cpu_seconds": {
                    **{key: value for key, value in used.items() if "/" not in key},
                    "load_generator": locust_cpu,
                },
                "cpu_by_role": {key.split("/", 1)[1]: value for key, value in used.items() if key.startswith("shop/")},
                "load_average": {"start": load_start, "end": os.getloadavg()},
                "shop_env": LOAD_ENV,
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "date": datetime.now().isoformat(timespec="seconds"),
            }
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
        finally:
            logs = out / "logs"
            logs.mkdir(exist_ok=True)
            for path in shop.logs:
                with contextlib.suppress(OSError):
                    shutil.copy(path, logs / path.name)
    log(f"{topology}: done in {time.monotonic() - began:.0f}s ({out})")


@contextlib.contextmanager
def dev_servers_stopped_after(topologies: list[str]) -> Iterator[None]:
    """Stop at the end the dev PostgreSQL and Kafka that this run started (as make test does)."""
    started: list[str] = []
    if any(topology != "one-process" for topology in topologies):
        for script in ("postgres.sh", "kafka.sh"):
            status = subprocess.run(["bash", f"scripts/dev/{script}", "status"], cwd=REPO, capture_output=True)
            if status.returncode != 0:
                started.append(script)
    try:
        yield
    finally:
        for script in started:
            log(f"stopping scripts/dev/{script} (this run started it)")
            subprocess.run(["bash", f"scripts/dev/{script}", "stop"], cwd=REPO, capture_output=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/load/run.sh", description="The mixed workload against each topology named, measured and plotted."
    )
    parser.add_argument(
        "topologies",
        nargs="+",
        choices=list(TOPOLOGIES),
        metavar="TOPOLOGY",
        help=f"one or more of {', '.join(TOPOLOGIES)}, run one after the other",
    )
    parser.add_argument("--users", type=int, default=20, help="locust users, each its own customer (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second (default 5)")
    parser.add_argument("--time", default="60s", help="how long the load runs, e.g. 60s, 5m (default 60s)")
    parser.add_argument(
        "--data",
        choices=("goodbooks", "demo"),
        default="goodbooks",
        help=f"goodbooks: the 10,000 real books of {BOOKS_CSV} (default); demo: seed_demo",
    )
    parser.add_argument("--stock", type=int, default=50, help="copies of each goodbooks book (default 50)")
    parser.add_argument(
        "--sign-in",
        choices=("refresh", "password"),
        default="refresh",
        help="how each user starts its session, measured (default refresh; password: a full hash)",
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.5, 1.5),
        metavar=("MIN", "MAX"),
        help="seconds a user waits between tasks (default 0.5 1.5)",
    )
    parser.add_argument("--out", type=Path, help="the run directory (default var/load/<date-time>)")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="write the comparison figure to docs/load/ and the section of docs/benchmarks.md",
    )
    options = parser.parse_args(argv)
    if options.users < 1 or options.spawn_rate <= 0:
        parser.error("--users must be at least 1 and --spawn-rate above 0")
    seconds_of(options.time)
    if options.data == "goodbooks" and not BOOKS_CSV.is_file():
        parser.error(
            f"--data goodbooks reads {BOOKS_CSV}, which does not exist: put goodbooks-10k there or use --data demo"
        )
    return options


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    options = parse(arguments)
    run_dir = options.out or REPO / "var" / "load" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"writing to {run_dir}")
    with dev_servers_stopped_after(options.topologies):
        for topology in dict.fromkeys(options.topologies):
            run_topology(topology, options, run_dir)
    command = "bench/load/run.sh " + " ".join(arguments)
    return plot.main([str(run_dir), *(["--docs", "--command", command] if options.docs else [])])


if __name__ == "__main__":
    sys.exit(main())
