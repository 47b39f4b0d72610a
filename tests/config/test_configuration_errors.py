"""A misconfigured process fails at start with one sentence that says what to set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from messaging.kafka.producers import RELAY_CLIENTS

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path, script: str = "import django; django.setup(); print('started')", *, before: str = "", **env):
    """``script`` (by default ``django.setup()``) in a new interpreter with ``env``; ``before`` runs first
    (e.g. hides a package)."""
    environment = {
        key: value for key, value in os.environ.items() if not key.endswith("DATABASE_URL") and key != "SERVICE"
    }
    environment.update({"QUIRE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", f"{before}\n{script}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_embedded_default_needs_no_variables(tmp_path):
    result = start_django(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"SERVICE": "billing"},
            "SERVICE='billing' names 'billing', not a module of Quire: set SERVICE to 'all', one of",
        ),
        (
            {"SERVICE": "accounts,billing", "EVENT_TRANSPORT": "kafka", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"},
            "SERVICE='accounts,billing' names 'billing', not a module of Quire",
        ),
        (
            {"SERVICE": "orders,catalog,orders", "EVENT_TRANSPORT": "kafka", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"},
            "SERVICE='orders,catalog,orders' names orders more than once: name each module once",
        ),
        ({"SERVICE": "catalog,,orders"}, "SERVICE='catalog,,orders' names an empty module"),
        (
            {"SERVICE": "accounts,catalog,orders"},
            "SERVICE=accounts,catalog,orders serves only some modules, so events must cross processes: "
            "set EVENT_TRANSPORT=kafka",
        ),
        ({"SERVICE": "catalog"}, "set EVENT_TRANSPORT=kafka (and KAFKA_BOOTSTRAP_SERVERS), or use SERVICE=all."),
        ({"EVENT_TRANSPORT": "carrier-pigeon"}, "EVENT_TRANSPORT='carrier-pigeon' is unknown"),
        (
            {"THROTTLE_SIGN_IN_RATE": "lots"},
            "THROTTLE_SIGN_IN_RATE: 'lots' is not a rate: write <count>/<s|min|hour|day>",
        ),
        ({"EVENT_TRANSPORT": "kafka"}, "EVENT_TRANSPORT=kafka needs a broker: set KAFKA_BOOTSTRAP_SERVERS"),
        (
            {"CATALOG_DATABASE_URL": "mysql-ish:nonsense"},
            "CATALOG_DATABASE_URL='mysql-ish:nonsense' is not a database URL",
        ),
        (
            {"ORDERS_DATABASE_URL": "postgres://user@/"},
            "ORDERS_DATABASE_URL='postgres://user@/' lacks a host or a database name",
        ),
        ({"DEBUG": "false"}, "SECRET_KEY is empty: set SECRET_KEY"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is unknown: set LOG_FORMAT to 'text' or 'json'."),
        (
            {"MESSAGING_RELAY_CLIENT": "librdkafka"},
            "MESSAGING_RELAY_CLIENT='librdkafka' is unknown: "
            "set MESSAGING_RELAY_CLIENT to 'kafka-python' (the default) or 'confluent'.",
        ),
    ],
)
def test_misconfiguration_fails_at_start_saying_what_to_set(tmp_path, env, sentence):
    result = start_django(tmp_path, **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert sentence in result.stderr


def test_the_confluent_relay_client_without_its_package_says_what_to_install(tmp_path):
    # None in sys.modules is how Python marks a module that cannot be imported.
    result = start_django(
        tmp_path, before="import sys; sys.modules['confluent_kafka'] = None", MESSAGING_RELAY_CLIENT="confluent"
    )
    assert result.returncode != 0
    assert (
        "MESSAGING_RELAY_CLIENT=confluent needs the confluent-kafka package, which is not installed: "
        "install requirements/base.txt (it pins confluent-kafka), or set MESSAGING_RELAY_CLIENT=kafka-python."
    ) in result.stderr


@pytest.mark.parametrize("client", RELAY_CLIENTS)
def test_each_relay_client_the_kernel_knows_is_accepted_at_start(tmp_path, client):
    result = start_django(tmp_path, MESSAGING_RELAY_CLIENT=client.upper())
    assert result.returncode == 0, result.stderr


def test_a_service_without_the_private_key_runs_with_the_public_key_only(tmp_path):
    from config.keys import generate_key_pair

    _, public = generate_key_pair()
    (tmp_path / "public.pem").write_text(public)
    result = start_django(
        tmp_path / "var",
        SERVICE="catalog",
        EVENT_TRANSPORT="kafka",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
        DEBUG="false",
        SECRET_KEY="x" * 50,
        JWT_PUBLIC_KEY_FILE=str(tmp_path / "public.pem"),
    )
    assert result.returncode == 0, result.stderr


def test_production_without_keys_says_which_to_set(tmp_path):
    result = start_django(tmp_path, DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "No JWT signing keys: set JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE" in result.stderr
