"""/api/map/ and /api/map/svg/: every process serves the map of its own configuration."""

from __future__ import annotations

import shutil

import pytest
from rest_framework.test import APIClient

from config import map_views
from config.module_map import service_map_svg


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
        "events": [
            "accounts.CustomerDeactivated v1",
            "accounts.CustomerDeleted v1",
            "accounts.CustomerReactivated v1",
            "accounts.CustomerRegistered v1",
            "accounts.CustomerUpdated v1",
        ],
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
    assert data["modules"]["recommendations"]["consumes_from"] == [
        "quire.accounts.events",
        "quire.catalog.events",
        "quire.orders.events",
    ]
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
    monkeypatch.setattr(map_views, "_pictures", {})  # a process that has not drawn its map yet

    response = APIClient().get("/api/map/svg/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert "scripts/dev/graphviz.sh ensure" in response.json()["detail"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (scripts/dev/graphviz.sh ensure)")
@pytest.mark.django_db(databases=["default"])
def test_the_svg_is_drawn_once_per_process_not_per_request(monkeypatch):
    monkeypatch.setattr(map_views, "_pictures", {})
    drawn = []

    def draw(data):
        drawn.append(data["grouping"])
        return service_map_svg(data)

    monkeypatch.setattr(map_views, "service_map_svg", draw)
    client = APIClient()

    answers = [client.get("/api/map/svg/") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    assert drawn == ["accounts+catalog+orders+recommendations"]  # one dot process, not three


@pytest.mark.django_db(databases=["default"])
def test_a_process_draws_the_map_of_its_own_configuration_even_after_drawing_another(settings):
    client = APIClient()
    assert [p["this"] for p in client.get("/api/map/").json()["processes"]] == [True]
    settings.SERVED_MODULES = ("recommendations",)
    settings.EVENT_TRANSPORT = "kafka"

    assert [p["name"] for p in client.get("/api/map/").json()["processes"]] == ["recommendations", "elsewhere"]


@pytest.mark.django_db(databases=["default"])
def test_the_map_is_public_and_throttled_per_address(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "service_map": "2/min"}
    client = APIClient()

    statuses = [client.get(path).status_code for path in ("/api/map/", "/api/map/", "/api/map/svg/")]

    assert statuses[:2] == [200, 200]
    refused = client.get("/api/map/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused["Content-Type"] == "application/problem+json"


@pytest.mark.django_db(databases=["default"])
def test_through_the_gateway_the_picture_is_linked_where_the_gateway_serves_it():
    client = APIClient()

    at_gateway = client.get("/api/map/", HTTP_X_FORWARDED_PREFIX="/map/orders/").json()
    forged = client.get("/api/map/", HTTP_X_FORWARDED_PREFIX="https://elsewhere.example/").json()

    assert at_gateway["svg"] == "http://testserver/map/orders/svg/"
    assert forged["svg"] == "http://testserver/api/map/svg/"
