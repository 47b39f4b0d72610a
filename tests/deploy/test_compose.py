"""Both compose files, loaded as ``docker compose`` loads them (compose-go), against the code's settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from config.management.commands.seed_demo import SEEDED
from config.topology import MODULES
from tests.deploy.conftest import env_example_names, management_commands, run_validator
from tests.support.processes import PYTHON, REPO, clean_env

pytestmark = pytest.mark.deploy

FILES = {
    "one-process": REPO / "docker" / "compose.one-process.yml",
    "services": REPO / "docker" / "compose.services.yml",
    "grouped": REPO / "docker" / "compose.grouped.yml",
}
#: compose.grouped.yml's processes: recommendations out, the rest together.
GROUPED = {"shop": ("accounts", "catalog", "orders"), "recommendations": ("recommendations",)}
SECRETS = {"SECRET_KEY": "compose-test-secret-" + "x" * 40, "POSTGRES_PASSWORD": "composetest"}
QUIRE_IMAGE = "quire:latest"
# Variables of the images that are not Quire's (their own documented settings).
FOREIGN_ENV = {
    "postgres": re.compile(r"^POSTGRES_"),
    "kafka": re.compile(r"^KAFKA_"),
    "gateway": re.compile(r"^(QUIRE_|NGINX_)"),
}
READY_PROBE = "http://127.0.0.1:8000/health/ready/"


def load(validator: Path, name: str, **env: str) -> subprocess.CompletedProcess:
    return run_validator(validator, "compose", str(FILES[name]), env={**clean_env(), **env})


@pytest.fixture(scope="module")
def projects(validator) -> dict[str, dict]:
    loaded = {}
    for name in FILES:
        result = load(validator, name, **SECRETS)
        assert result.returncode == 0, f"{FILES[name].name} does not load:\n{result.stderr}"
        loaded[name] = json.loads(result.stdout)
    return loaded


def quire_services(project: dict) -> dict[str, dict]:
    return {name: s for name, s in project["services"].items() if s.get("image") == QUIRE_IMAGE}


def long_running(project: dict) -> dict[str, dict]:
    return {name: s for name, s in quire_services(project).items() if "run_service" in s["command"]}


def depends(service: dict) -> dict[str, str]:
    return {name: d["condition"] for name, d in (service.get("depends_on") or {}).items()}


def test_make_keys_runs_the_way_the_image_runs_it(tmp_path):
    # `python docker/make-keys.py` from anywhere: the script's directory, not the project root, is on sys.path.
    env = clean_env(KEYS_DIR=str(tmp_path / "keys"))
    first = subprocess.run(
        [PYTHON, str(REPO / "docker" / "make-keys.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    public, private = tmp_path / "keys" / "jwt-public.pem", tmp_path / "keys" / "jwt-private.pem"
    assert "BEGIN PUBLIC KEY" in public.read_text() and "PRIVATE KEY" in private.read_text()
    assert private.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    again = subprocess.run(
        [PYTHON, str(REPO / "docker" / "make-keys.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "kept" in again.stdout
    assert "BEGIN PUBLIC KEY" in public.read_text()


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("secret", ["SECRET_KEY", "POSTGRES_PASSWORD"])
def test_a_missing_secret_stops_the_start_with_what_to_set(validator, name, secret):
    if secret not in FILES[name].read_text():
        pytest.skip(f"{name} has no {secret}")
    result = load(validator, name, **{k: v for k, v in SECRETS.items() if k != secret})
    assert result.returncode != 0, f"{name} starts without {secret}"
    assert f"set {secret}" in result.stderr, result.stderr


@pytest.mark.parametrize("name", FILES)
def test_no_secret_has_a_fixed_fallback(name):
    text = FILES[name].read_text()
    assert not re.search(r"\$\{(SECRET_KEY|POSTGRES_PASSWORD)(:?-)", text), "a secret falls back to a fixed value"
    assert "compose-only-secret" not in text


@pytest.mark.parametrize("name", FILES)
def test_every_quire_container_runs_the_one_image_with_commands_that_exist(projects, name):
    commands = management_commands()
    for service_name, service in quire_services(projects[name]).items():
        assert service["build"]["dockerfile"].endswith("docker/Dockerfile"), service_name
        assert Path(service["build"]["context"]).resolve() == REPO, service_name
        command = service["command"]
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{service_name}: manage.py {command[2]} does not exist"
        elif command[:2] == ["python", "docker/make-keys.py"]:
            assert (REPO / "docker" / "make-keys.py").is_file()
        else:
            assert command[0] == "sh" and "/app/staticfiles" in command[-1], f"{service_name}: {command}"


@pytest.mark.parametrize("name", FILES)
def test_every_variable_a_quire_container_gets_is_one_the_code_reads(projects, name):
    known = env_example_names() | {"KEYS_DIR"}
    for service_name, service in projects[name]["services"].items():
        environment = service.get("environment") or {}
        if service.get("image") == QUIRE_IMAGE:
            unknown = set(environment) - known
            assert not unknown, f"{service_name}: {sorted(unknown)} are not in .env.example"
        else:
            foreign = FOREIGN_ENV.get(service_name)
            assert foreign, f"{service_name} is neither Quire's image nor a known one"
            assert all(foreign.match(variable) for variable in environment), (service_name, sorted(environment))


def test_each_service_owns_one_database_and_only_accounts_signs(projects):
    project = projects["services"]
    created = set(re.findall(r"CREATE DATABASE (\w+)", (REPO / "docker" / "postgres-init.sql").read_text()))
    created.add(project["services"]["postgres"]["environment"]["POSTGRES_DB"])
    for service_name, service in quire_services(project).items():
        environment = service.get("environment") or {}
        module = environment.get("SERVICE")
        if module is None:
            continue
        assert module in MODULES, service_name
        url = environment["DATABASE_URL"]
        assert environment[f"{module.upper()}_DATABASE_URL"] == url, service_name
        assert url.endswith(f"/quire_{module}") and url.split("/")[-1] in created, service_name
        assert f":{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/" in url, service_name
        assert ("JWT_PRIVATE_KEY_FILE" in environment) == (module == "accounts"), service_name
        assert environment["EVENT_TRANSPORT"] == "kafka" and environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_the_services_start_in_order_and_are_healthy_on_their_readiness(projects):
    project = projects["services"]
    services = project["services"]
    running = long_running(project)
    assert set(running) == set(MODULES)
    for module, service in running.items():
        assert service["command"][-2:] == ["--port", "8000"] and "--migrate" not in service["command"]
        test = " ".join(service["healthcheck"]["test"])
        assert READY_PROBE in test, f"{module}: healthcheck {test}"
        needs = depends(service)
        assert needs.get("keys") == needs.get("topics") == "service_completed_successfully", module
        migration = f"migrate-{module}"
        assert (
            services[migration]["command"][2] == "migrate"
            and services[migration]["environment"] == service["environment"]
        )
        # its migration has run: directly, or through its demo data that waits for it
        seeded_by = f"seed-{module}"
        assert needs.get(migration) == "service_completed_successfully" or (
            needs.get(seeded_by) == "service_completed_successfully"
            and depends(services[seeded_by]).get(migration) == "service_completed_successfully"
        ), module
    gateway = services["gateway"]
    assert {m: depends(gateway).get(m) for m in MODULES} == dict.fromkeys(MODULES, "service_healthy")
    for module in MODULES:
        assert gateway["environment"][f"QUIRE_{module.upper()}_UPSTREAM"] == f"{module}:8000"
    template = (REPO / "deploy" / "nginx" / "quire.conf.template").read_text()
    assert set(re.findall(r"\$\{(QUIRE_\w+)\}", template)) <= set(gateway["environment"])


def test_demo_data_is_seeded_once_by_the_modules_that_have_it(projects):
    for name, project in projects.items():
        seeders = {n: s for n, s in quire_services(project).items() if s["command"][2:3] == ["seed_demo"]}
        assert all("--if-empty" in s["command"] for s in seeders.values()), name
        modules = sorted((s.get("environment") or {}).get("SERVICE", "all") for s in seeders.values())
        if name == "grouped":  # one process serves both seeded modules, so it seeds once
            assert modules == ["accounts,catalog,orders"] and set(SEEDED) <= set(GROUPED["shop"]), modules
            continue
        assert modules == (["all"] if name == "one-process" else sorted(SEEDED)), name
        for seeder_name, seeder in seeders.items():
            assert any(d.startswith("migrate") for d in depends(seeder)), seeder_name


def test_the_one_process_shop_serves_itself_on_loopback(projects):
    project = projects["one-process"]
    assert set(long_running(project)) == {"shop"}
    shop = project["services"]["shop"]
    assert shop["environment"]["SERVICE"] == "all" and shop["environment"]["EVENT_TRANSPORT"] == "inprocess"
    assert READY_PROBE in " ".join(shop["healthcheck"]["test"])
    assert depends(shop) == {"seed": "service_completed_successfully"}
    assert [(p["host_ip"], p["published"], p["target"]) for p in shop["ports"]] == [("127.0.0.1", "8000", 8000)]


@pytest.mark.parametrize("name", FILES)
def test_only_the_entry_point_is_published_and_only_on_loopback(projects, name):
    published = {n: s["ports"] for n, s in projects[name]["services"].items() if s.get("ports")}
    assert len(published) == 1, published
    for ports in published.values():
        assert all(port["host_ip"] == "127.0.0.1" for port in ports)


@pytest.mark.parametrize("name", FILES)
def test_settings_load_with_each_containers_environment(projects, name, tmp_path):
    """Every distinct environment a Quire container gets loads the settings (keys at temporary paths)."""
    keys = tmp_path / "keys"
    subprocess.run(
        [PYTHON, str(REPO / "docker" / "make-keys.py")],
        env=clean_env(KEYS_DIR=str(keys)),
        check=True,
        capture_output=True,
    )
    seen = set()
    for service_name, service in quire_services(projects[name]).items():
        environment = service.get("environment")
        if not environment or json.dumps(environment, sort_keys=True) in seen:
            continue
        seen.add(json.dumps(environment, sort_keys=True))
        env = {
            k: v.replace("/keys/", f"{keys}/").replace("/app/var", str(tmp_path / "var"))
            for k, v in environment.items()
        }
        code = (
            "import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({'served': list(s.SERVED_MODULES), 'debug': s.DEBUG, 'databases': sorted(s.DATABASES)}))"
        )
        result = subprocess.run(
            [PYTHON, "-c", code],
            cwd=REPO,
            env=clean_env(DJANGO_SETTINGS_MODULE="config.settings", PATH=os.environ["PATH"], **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{service_name}: settings fail to load:\n{result.stderr[-2000:]}"
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        assert loaded["debug"] is False, service_name
        module = environment.get("SERVICE", "all")
        assert loaded["served"] == (list(MODULES) if module == "all" else module.split(",")), service_name


def test_the_grouped_file_runs_recommendations_out_and_the_rest_together(projects):
    """Two processes on the same databases as compose.services.yml; the gateway follows the grouping."""
    project = projects["grouped"]
    services = project["services"]
    running = long_running(project)
    assert set(running) == set(GROUPED)
    for name, modules in GROUPED.items():
        environment = running[name]["environment"]
        assert environment["SERVICE"] == ",".join(modules)
        # its `default` (staff, sessions) is its first module's database, and it has each module's own
        assert environment["DATABASE_URL"].endswith(f"/quire_{modules[0]}")
        for module in modules:
            assert environment[f"{module.upper()}_DATABASE_URL"].endswith(f"/quire_{module}")
        assert not {f"{m.upper()}_DATABASE_URL" for m in MODULES if m not in modules} & set(environment)
        assert ("JWT_PRIVATE_KEY_FILE" in environment) == ("accounts" in modules), name
        assert READY_PROBE in " ".join(running[name]["healthcheck"]["test"])
        migration = f"migrate-{name}"
        assert services[migration]["environment"] == environment
        needs = depends(running[name])
        assert needs.get(migration) == "service_completed_successfully" or needs.get(f"seed-{name}") == (
            "service_completed_successfully"
        )
    gateway = services["gateway"]
    assert {name: depends(gateway).get(name) for name in GROUPED} == dict.fromkeys(GROUPED, "service_healthy")
    for name, modules in GROUPED.items():
        for module in modules:
            assert gateway["environment"][f"QUIRE_{module.upper()}_UPSTREAM"] == f"{name}:8000"
    # The same databases, topics and groups as the four services: a shop moves between the files.
    assert set(services) - set(projects["services"]["services"]) == {"shop", "migrate-shop", "seed-shop"}
