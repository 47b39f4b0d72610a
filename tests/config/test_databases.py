"""Connection settings per alias: persistent, health-checked connections by default, on PostgreSQL and SQLite."""

from __future__ import annotations

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from config.databases import database_config

PG_URL = "postgres://quire:secret@127.0.0.1:5432/quire_catalog"


def config_for(monkeypatch, url: str, **variables: str) -> dict:
    monkeypatch.delenv("CATALOG_DATABASE_URL", raising=False)
    for name in ("DATABASE_CONN_MAX_AGE", "DATABASE_CONN_HEALTH_CHECKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return database_config(environ.Env(), "catalog", url)


def test_postgresql_keeps_connections_with_health_checks_by_default(monkeypatch):
    config = config_for(monkeypatch, PG_URL)
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)


def test_sqlite_keeps_connections_by_default_too(monkeypatch, tmp_path):
    config = config_for(monkeypatch, f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)


def test_sqlite_connects_per_request_when_told(monkeypatch, tmp_path):
    config = config_for(monkeypatch, f"sqlite:///{tmp_path / 'catalog.sqlite3'}", DATABASE_CONN_MAX_AGE="0")
    assert config["CONN_MAX_AGE"] == 0


def test_the_variables_override_the_defaults(monkeypatch):
    config = config_for(monkeypatch, PG_URL, DATABASE_CONN_MAX_AGE="0", DATABASE_CONN_HEALTH_CHECKS="false")
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (0, False)


def test_a_max_age_that_is_not_a_number_says_what_to_set(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_CONN_MAX_AGE='a minute' is not a whole number"):
        config_for(monkeypatch, PG_URL, DATABASE_CONN_MAX_AGE="a minute")
