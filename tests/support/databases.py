"""A test that runs once per database engine: on the stage's own database, and on PostgreSQL.

``make test`` runs the SQLite stage, then the PostgreSQL stage with every alias on PostgreSQL;
each variant runs in the stage whose database it names and skips in the other.
"""

from __future__ import annotations

import pytest
from django.db import connections

on_each_database = pytest.mark.parametrize(
    "database",
    [pytest.param("configured", id="sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql")],
)


def on(database: str, alias: str = "orders") -> None:
    """Skip unless this stage's ``alias`` is the database the variant names."""
    vendor = connections[alias].vendor
    if database == "postgresql" and vendor != "postgresql":
        pytest.skip("the PostgreSQL stage runs this one")
    if database == "configured" and vendor == "postgresql":
        pytest.skip("the PostgreSQL variant covers this database")
