"""One test on each database: SQLite in the SQLite stage, PostgreSQL in the PostgreSQL stage."""

from __future__ import annotations

import pytest
from django.db import connections

#: Parametrizes a test over the two databases; the test calls :func:`use_database` first.
on_each_database = pytest.mark.parametrize(
    "database",
    [pytest.param("configured", id="sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql")],
)


def use_database(database: str) -> None:
    """Skip the variant that the other stage runs: each stage runs its own database's variant once."""
    vendor = connections["default"].vendor
    if database == "postgresql" and vendor != "postgresql":
        pytest.skip("the PostgreSQL stage runs this one")
    if database == "configured" and vendor == "postgresql":
        pytest.skip("the PostgreSQL variant covers this database")
