"""A module's database lost for good, as a test needs it: the connection pointed where nothing answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections

from tests.support.processes import free_port


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
