"""A process started with SERVICE=accounts,catalog,orders serves exactly that set, and nothing of recommendations.

Each check runs in a process of its own, started as the grouped process is (the settings are read
once, at start): its apps, databases, URLs and admin, and the children ``run_service`` plans for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUP = ("accounts", "catalog", "orders")

# Printed as JSON by the grouped process itself: what it serves, and what it answers.
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import Resolver404, resolve

def mounted(path):
    try:
        resolve(path)
        return True
    except Resolver404:
        return False

MODULES = ("accounts", "catalog", "orders", "recommendations")
client = Client()
missing = [client.get(path) for path in ("/api/recommendations/", "/api/recommendations/books/1/similar/")]
print(json.dumps({
    "apps": settings.INSTALLED_APPS,
    "databases": sorted(settings.DATABASES),
    "api_root": sorted(client.get("/api/").json()),
    "recommendations_api": [[answer.status_code, answer["Content-Type"], answer.json()] for answer in missing],
    "admin_login": {m: client.get(f"/admin/{m}/login/").status_code for m in MODULES},
    "admin_mounted": {m: mounted(f"/admin/{m}/") for m in MODULES},
    "admin_models": sorted(f"{model._meta.app_label}.{model.__name__}" for model in admin.site._registry),
    # The API sign-in pages sit under the first module's prefix, which the modules' API patterns precede.
    "api_auth_login": client.get(f"/api/{settings.SERVED_MODULES[0]}/auth/login/").status_code,
    "catalog_books_view": resolve("/api/catalog/books/").func.view_class.__name__,
}))
"""


def grouped_env(tmp_path: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("DATABASE_URL") and key not in ("SERVICE", "EVENT_TRANSPORT", "DEBUG")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        QUIRE_VAR_DIR=str(tmp_path),
        SERVICE=",".join(GROUP),
        EVENT_TRANSPORT="kafka",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # never reached: nothing here talks to the broker
        DEBUG="true",
    )
    return environment


def run_grouped(tmp_path: Path, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=grouped_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    return json.loads(run_grouped(tmp_path_factory.mktemp("grouped"), "-c", PROBE))


def test_its_apps_and_databases_are_those_of_the_set(probe):
    modules = [app.split(".")[0] for app in probe["apps"] if app.split(".")[0] in (*GROUP, "recommendations")]
    assert modules == list(GROUP)
    assert probe["databases"] == ["accounts", "catalog", "default", "orders"]


def test_recommendations_api_is_a_404_problem_and_the_api_root_lists_the_set(probe):
    for status, content_type, body in probe["recommendations_api"]:
        assert (status, content_type) == (404, "application/problem+json")
        assert body["status"] == 404
    assert probe["api_root"] == list(GROUP)


def test_the_api_sign_in_pages_answer_under_the_first_module_of_the_set(probe):
    assert probe["api_auth_login"] == 200
    assert probe["catalog_books_view"] == "BookListView"


def test_the_admin_is_mounted_at_each_module_of_the_set_and_shows_none_of_recommendations(probe):
    assert probe["admin_mounted"] == {"accounts": True, "catalog": True, "orders": True, "recommendations": False}
    assert probe["admin_login"] == {"accounts": 200, "catalog": 200, "orders": 200, "recommendations": 404}
    labels = {name.split(".")[0] for name in probe["admin_models"]}
    assert {"accounts", "catalog", "orders"} <= labels and "recommendations" not in labels
    # The messaging tables of the set's modules only (messaging.<Module>OutboxMessage ...).
    messaging = {name for name in probe["admin_models"] if name.startswith("messaging.")}
    assert messaging and not any(name.startswith("messaging.Recommendations") for name in messaging)
    assert {name.split(".")[1].removesuffix("OutboxMessage") for name in messaging if "Outbox" in name} == {
        "Accounts",
        "Catalog",
        "Orders",
    }


def test_run_service_plans_relays_and_consumers_for_the_set_only(tmp_path):
    plan = json.loads(run_grouped(tmp_path, "manage.py", "run_service", "--plan"))

    assert (plan["service"], plan["modules"], plan["transport"]) == ("accounts+catalog+orders", list(GROUP), "kafka")
    children = {child["name"]: child for child in plan["children"]}
    assert set(children) == {"web", "relay", "consumer", "expiry", "sagas"}
    assert children["relay"]["argv"][-1] == "run_relay" and children["consumer"]["argv"][-1] == "run_consumer"
    assert children["relay"]["outboxes"] == {m: f"quire.{m}.events" for m in GROUP}
    groups = children["consumer"]["groups"]
    assert set(groups) <= set(GROUP) and {"catalog", "orders"} <= set(groups)
    assert {name: group["group"] for name, group in groups.items()} == {name: f"quire.{name}" for name in groups}
    assert groups["catalog"]["topics"] == ["quire.orders.events"]
    assert "quire.recommendations.events" not in {topic for group in groups.values() for topic in group["topics"]}
    # And nothing was started: no metrics directory, no heartbeat.
    assert not (tmp_path / "metrics").exists() and not (tmp_path / "heartbeat").exists()
