"""/api/map/ and /api/map/svg/: every process serves the map of its own configuration."""

from __future__ import annotations

import shutil

import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db(databases=["default"])
def test_the_map_of_the_one_process_shop():
    response = APIClient().get("/api/map/")

    assert response.status_code == 200
    data = response.json()
    assert data["transport"] == "inprocess"
    assert data["processes"] == [
        {
            "name": "accounts+catalog+orders+recommendations",
            "service": "all",
            "modules": ["accounts", "catalog", "orders", "recommendations"],
            "this": True,
        }
    ]
    database = data["modules"]["orders"]["database"]
    assert (database["alias"], database["vendor"]) == ("orders", "sqlite")
    assert data["modules"]["orders"]["api"] == "/api/orders/"
    assert {
        "from": "accounts",
        "to": "orders",
        "topic": "quire.accounts.events",
        "events": ["accounts.CustomerRegistered v1", "accounts.CustomerUpdated v1"],
    } in data["flows"]
    assert data["svg"].endswith("/api/map/svg/")
    assert "password" not in response.content.decode().lower()


@pytest.mark.django_db(databases=["default"])
def test_a_process_serving_some_modules_draws_the_others_elsewhere(settings):
    settings.SERVED_MODULES = ("recommendations",)
    settings.EVENT_TRANSPORT = "kafka"

    data = APIClient().get("/api/map/").json()

    assert [(p["name"], p["this"], p["modules"]) for p in data["processes"]] == [
        ("recommendations", True, ["recommendations"]),
        ("elsewhere", False, ["accounts", "catalog", "orders"]),
    ]
    assert list(data["modules"]) == ["recommendations"]
    assert data["modules"]["recommendations"]["consumes_from"] == ["quire.catalog.events", "quire.orders.events"]
    # The consumers of other modules' events are read from their handlers.py, not from this process's registry.
    assert {"from": "catalog", "to": "orders", "topic": "quire.catalog.events"}.items() <= next(
        f for f in data["flows"] if f["from"] == "catalog" and f["to"] == "orders"
    ).items()


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (scripts/dev/graphviz.sh ensure)")
@pytest.mark.django_db(databases=["default"])
def test_the_map_as_svg():
    response = APIClient().get("/api/map/svg/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    body = response.content.decode()
    assert "process SERVICE=all (this process)" in body and "(in&#45;process relay)" in body


@pytest.mark.django_db(databases=["default"])
def test_without_dot_the_svg_is_a_problem_that_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without graphviz

    response = APIClient().get("/api/map/svg/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert "scripts/dev/graphviz.sh ensure" in response.json()["detail"]
