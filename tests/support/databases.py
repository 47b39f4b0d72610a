"""Tests and databases: one test on each database (SQLite in the SQLite stage, PostgreSQL in the PostgreSQL
stage), and a module's database lost for good, as a test needs it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.db import connections

from tests.support.processes import free_port

#: Parametrizes a test over the two databases; the test calls :func:`use_database` first.
on_each_database = pytest.mark.parametrize(
    "database",
    [pytest.param("configured", id="sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql")],
)


def use_database(database: str, alias: str = "default") -> None:
    """Skip the variant that the other stage runs (by ``alias``'s engine): each stage runs its own variant once."""
    vendor = connections[alias].vendor
    if database == "postgresql" and vendor != "postgresql":
        pytest.skip("the PostgreSQL stage runs this one")
    if database == "configured" and vendor == "postgresql":
        pytest.skip("the PostgreSQL variant covers this database")


@contextlib.contextmanager
def database_lost(alias: str) -> Iterator[None]:
    """``alias``'s connection made to a database that cannot be reached, then put back as it was.

    PostgreSQL: a port nothing listens on (connection refused); SQLite: a file in a missing directory.
    """
    connection = connections[alias]
    saved = dict(connection.settings_dict)
    connection.ensure_connection()
    # Kept aside, not closed: closing the last connection to SQLite's in-memory test database drops it.
    real, connection.connection = connection.connection, None
    if connection.vendor == "postgresql":
        connection.settings_dict["PORT"] = str(free_port())
    else:
        connection.settings_dict["NAME"] = f"/nonexistent/quire/{alias}.sqlite3"
    try:
        yield
    finally:
        connection.settings_dict.update(saved)
        connection.connection = real
