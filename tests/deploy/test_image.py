"""The container stage: the image built from docker/Dockerfile (podman, chroot isolation), then every
Quire process of both compose files started from it with the environment compose gives its container.

What compose does that cannot be reproduced here is replaced, and said so in the output: each
container's own network namespace (the host's loopback instead: services bind 127.0.0.1 on free
ports), and the registry images of PostgreSQL, Kafka and nginx (the local servers of
scripts/dev/ and the gateway of scripts/services.sh). Everything that runs Quire's code runs from
the image (``buildah run``): the key step, migrations, topics, demo data, web, relay and consumer.
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
from pathlib import Path

import pytest

from tests.deploy.conftest import run_validator
from tests.e2e.harness import services_shop
from tests.support.http import Client, expect, wait_answering
from tests.support.processes import REPO, clean_env, free_port, spawn, tail
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.image, pytest.mark.postgres, pytest.mark.kafka]

IMAGE = os.environ.get("QUIRE_IMAGE", "localhost/quire:test")
SECRETS = {"SECRET_KEY": "image-stage-" + uuid.uuid4().hex * 2, "POSTGRES_PASSWORD": "imagestage"}
COMPOSE = {
    "one-process": REPO / "docker" / "compose.one-process.yml",
    "services": REPO / "docker" / "compose.services.yml",
}


def say(message: str) -> None:
    print(f"container stage: {message}", file=sys.stderr, flush=True)


def image_sh(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", "scripts/image.sh", *args], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"scripts/image.sh {' '.join(args[:3])} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def compose(validator) -> dict[str, dict]:
    loaded = {}
    for name, path in COMPOSE.items():
        result = run_validator(validator, "compose", str(path), env={**clean_env(), **SECRETS})
        assert result.returncode == 0, result.stderr
        loaded[name] = json.loads(result.stdout)["services"]
    return loaded


@pytest.fixture(scope="module")
def container() -> str:
    started = time.monotonic()
    built = image_sh("build", timeout=1500)
    for line in built.stderr.splitlines():
        say(line.removeprefix("image.sh: "))
    say(f"image {IMAGE} ready in {time.monotonic() - started:.0f}s")
    name = f"quire-stage-{uuid.uuid4().hex[:8]}"
    image_sh("from", name)
    yield name
    subprocess.run(["bash", "scripts/image.sh", "rm", name], cwd=REPO, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def keys(container, compose, tmp_path_factory) -> Path:
    """compose's `keys` step, from the image: its command, as root, onto a directory mounted at /keys."""
    directory = tmp_path_factory.mktemp("keys")
    directory.chmod(0o755)  # as a named volume's root: the services (uid 10001) read the files in it
    step = compose["services"]["keys"]
    assert step["user"] == "root"
    image_sh("run", "--user", "0:0", "--volume", f"{directory}:/keys", container, "--", *step["command"])
    assert {p.name for p in directory.iterdir()} == {"jwt-private.pem", "jwt-public.pem"}
    say(f"keys: `{' '.join(step['command'])}` made the JWT key pair (mounted at /keys as compose's volume)")
    return directory


def run_args(container: str, environment: dict[str, str], volumes: list[str]) -> list[str]:
    args = ["run"]
    for name, value in environment.items():
        args += ["--env", f"{name}={value}"]
    for volume in volumes:
        args += ["--volume", volume]
    return [*args, container, "--"]


def loopback(command: list[str], port: int) -> list[str]:
    """compose's run_service command with the host's loopback for the container's own network."""
    command = list(command)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


@contextlib.contextmanager
def from_image(argv: list[str], log: Path, pidfile: Path):
    """A long-running process from the image; stopped with SIGTERM to the process itself (buildah kills)."""
    process = spawn(
        ["bash", "scripts/image.sh", *argv[:-1], "sh", "-c", 'echo $$ >"$0" && exec "$@"', str(pidfile), *argv[-1]],
        env=clean_env(),
        log=log,
    )
    try:
        yield process
    finally:
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_one_process_shop_runs_from_the_image(container, compose, keys, tmp_path):
    services = compose["one-process"]
    shop = services["shop"]
    environment = dict(shop["environment"])
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the image's quire user writes it, as it writes the named volume
    run = tmp_path / "run"  # where the shop's run_service writes its pid (see from_image)
    run.mkdir(mode=0o777)
    run.chmod(0o777)
    volumes = [f"{data}:/app/var", f"{keys}:/keys:ro", f"{run}:{run}"]
    base = run_args(container, environment, volumes)
    for step in ("migrate", "seed"):
        assert services[step]["environment"] == environment
        started = time.monotonic()
        result = image_sh(*base, *services[step]["command"], timeout=900)
        say(f"one-process {step}: `{' '.join(services[step]['command'])}` in {time.monotonic() - started:.0f}s")
        if step == "seed":
            say("one-process seed: " + result.stdout.strip().splitlines()[-1])
    port = free_port()
    command = loopback(shop["command"], port)
    log = tmp_path / "shop.log"
    with from_image([*base, command], log, run / "shop.pid") as process:
        url = f"http://127.0.0.1:{port}"
        wait_answering(f"{url}/api/", timeout=180, process=process, log=log)
        client = Client(url)
        say(f"one-process shop: `{' '.join(command)}` answers {url}/api/ (compose: 0.0.0.0:8000 in its own network)")
        api = expect(client.get("/api/"), 200)
        assert "catalog" in json.dumps(api)
        login = client.get("/admin/login/", headers={"Accept": "text/html"})
        assert login.status == 200, login
        css = re.search(r'href="(/static/admin/css/base\.css)"', login.text)
        assert css, "the admin page links no stylesheet"
        stylesheet = client.get(css.group(1))
        assert stylesheet.status == 200 and stylesheet.headers["Content-Type"].startswith("text/css"), stylesheet
        ready = client.get("/health/ready/")
        assert ready.status == 200 and ready.json()["status"] == "ok", ready
        say(f"one-process shop: /api/ 200, admin CSS {css.group(1)} 200 text/css (WhiteNoise), /health/ready/ 200")


def test_the_services_complete_a_checkout_confirmed_over_kafka(container, compose, keys):
    services = compose["services"]
    started = time.monotonic()

    def from_the_image(workdir: Path, env: dict[str, str]) -> dict[str, str]:
        env_dir = workdir / "container-env"
        env_dir.mkdir(parents=True)
        for name in ("topics", "accounts", "catalog", "orders", "recommendations"):
            environment = dict(services[name]["environment"])
            module = environment.get("SERVICE")
            # Compose's hosts (postgres, kafka) become the local servers; the run's own databases and prefix.
            environment["KAFKA_BOOTSTRAP_SERVERS"] = env["KAFKA_BOOTSTRAP_SERVERS"]
            environment["KAFKA_TOPIC_PREFIX"] = env["KAFKA_TOPIC_PREFIX"]
            if module:
                url = env[f"{module.upper()}_DATABASE_URL"]
                environment["DATABASE_URL"] = environment[f"{module.upper()}_DATABASE_URL"] = url
            (env_dir / f"{name}.env").write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
        return {
            "QUIRE_IMAGE_CONTAINER": container,
            "QUIRE_CONTAINER_ENV_DIR": str(env_dir),
            "QUIRE_CONTAINER_VOLUMES": f"{keys}:/keys:ro",
            "QUIRE_SEED_DEMO": "1",  # compose's seed-catalog and seed-accounts steps
        }

    say(
        "services: PostgreSQL, Kafka and the nginx gateway are the local servers (scripts/dev, services.sh),"
        " not compose's registry images"
    )
    with services_shop(from_the_image) as shop:
        say(
            f"services: topics, migrations, demo data, four run_service (web + relay + consumer) from the image,"
            f" behind the gateway at {shop.base_url} in {time.monotonic() - started:.0f}s"
        )
        for module in ("accounts", "catalog", "orders", "recommendations"):
            ready = shop.client().get(f"/health/{module}/ready/")
            assert ready.status == 200, ready
        customer = shop.client()
        email = f"image-{uuid.uuid4().hex[:8]}@stage.example"
        expect(
            customer.post("/api/accounts/register/", {"email": email, "password": "Image-Stage-Pa55", "name": "Stage"}),
            202,
        )
        customer.token = expect(
            customer.post("/api/accounts/token/", {"email": email, "password": "Image-Stage-Pa55"}), 200
        )["access"]
        books = expect(shop.client().get("/api/catalog/books/?limit=5"), 200)["results"]
        assert books, "the demo books are missing"
        book = books[0]

        def in_cart():
            response = customer.post("/api/orders/cart/items/", {"book_id": book["id"], "quantity": 1})
            return response.status in (200, 201) and response

        wait_until(in_cart, timeout=60, message="orders knows the demo book (catalog's events over Kafka)")
        placed = time.monotonic()
        order = expect(
            customer.request("POST", "/api/orders/", json_body={}, headers={"Idempotency-Key": str(uuid.uuid4())}), 201
        )
        say(f"services: checkout of {book['title']!r}: order {order['id']} {order['state']}")

        def confirmed():
            current = expect(customer.get(f"/api/orders/{order['id']}/"), 200)
            return current if current["state"] == "confirmed" else False

        final = wait_until(confirmed, timeout=60, message="the order is confirmed over Kafka")
        say(
            f"services: order {final['id']} confirmed {time.monotonic() - placed:.1f}s later"
            " (orders.OrderPlaced -> catalog reserves -> catalog.StockReserved -> orders confirms, over Kafka)"
        )
        for log in shop.logs:
            assert "Traceback" not in tail(log, 400), f"{log.name}:\n{tail(log, 60)}"
