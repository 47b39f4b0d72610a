"""The SQLite backend counts queries for /metrics as django-prometheus's does, with one cursor class per connection."""

from __future__ import annotations

import pytest
from django.db import connections
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db(databases=["catalog"])


def executed(alias: str) -> float:
    return (
        REGISTRY.get_sample_value("django_db_execute_total", {"alias": alias, "vendor": connections[alias].vendor})
        or 0.0
    )


def test_cursors_of_one_connection_share_a_class_and_every_query_is_counted():
    connection = connections["catalog"]
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's backend")
    assert type(connection).__module__ == "config.backends.sqlite3.base"
    before = executed("catalog")
    with connection.cursor() as first, connection.cursor() as second:
        first.execute("SELECT 1")
        second.execute("SELECT 2")
        assert type(first.cursor) is type(second.cursor)
    assert executed("catalog") == before + 2
