"""The PostgreSQL server of a test run: where it is, fresh databases on it, and queries.

The server is ``scripts/dev/postgres.sh``'s (started if need be) unless the caller's
``DATABASE_URL`` points at one, as in ``make test``. A harness creates databases of its own
on it (:func:`fresh_databases`) so that runs never share tables, and reads them back with
:class:`Database`, a psql-style "this query, these rows".
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import psycopg2

from tests.support.processes import dev_server, free_port, run, tail


def server_url() -> str:
    """A URL of the server (any database on it): the caller's ``DATABASE_URL`` if PostgreSQL, else the dev server's."""
    found = dev_server("postgres.sh")
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        return database_url
    return found["DATABASE_URL"]


def url_with_database(url: str, dbname: str) -> str:
    """``url`` with its database name replaced."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{dbname}"))


def connect(url: str, dbname: str | None = None):
    """An autocommit connection to ``url`` (or to database ``dbname`` on its server)."""
    parts = urllib.parse.urlsplit(url)
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        dbname=dbname or parts.path.lstrip("/"),
    )
    connection.autocommit = True
    return connection


def create_databases(server: str, names: Iterable[str]) -> None:
    """``CREATE DATABASE`` each of ``names`` on the server of ``server``."""
    _on_server(server, [f'CREATE DATABASE "{name}"' for name in names])


def drop_databases(server: str, names: Iterable[str]) -> None:
    """Drop each of ``names`` (if it exists), ending whatever sessions still use it."""
    _on_server(server, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names])


def _on_server(server: str, statements: list[str]) -> None:
    connection = connect(server, "postgres")
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


@contextlib.contextmanager
def fresh_databases(server: str, names: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Create the databases ``names`` (key -> database name); yield key -> URL; drop them afterwards."""
    try:
        create_databases(server, names.values())
        yield {key: url_with_database(server, name) for key, name in names.items()}
    finally:
        drop_databases(server, names.values())


class Database:
    """One database, queried as with psql: a query and its parameters in, its rows out.

    The connection (autocommit) is opened at the first query and again if it was closed.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection = None

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        if self._connection is None or self._connection.closed:
            self._connection = connect(self.url)
        with self._connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def scalar(self, query: str, params: tuple = ()):
        return self.rows(query, params)[0][0]

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()


class PrivatePostgres:
    """A PostgreSQL server of one test's own (``scripts/dev/postgres.sh`` with its own state dir and port).

    A drill may crash it (``pg_ctl stop -m immediate``) without disturbing the shared server.
    Its settings are the script's, durability included (``synchronous_commit = on``).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"postgres://quire:quire@127.0.0.1:{self.port}/postgres"
        variables = ("QUIRE_EXTERNAL_POSTGRES", "DATABASE_URL")
        self.env = {name: value for name, value in os.environ.items() if name not in variables}
        self.env.update(QUIRE_STATE_DIR=str(state_dir), QUIRE_PG_PORT=str(self.port))

    def start(self) -> None:
        run(["bash", "scripts/dev/postgres.sh", "start"], self.env, timeout=300)

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend killed at once, no checkpoint."""
        run(["bash", "scripts/dev/postgres.sh", "crash"], self.env, timeout=120)

    def stop(self) -> None:
        run(["bash", "scripts/dev/postgres.sh", "stop"], self.env, timeout=120)

    def setting(self, name: str) -> str:
        connection = connect(self.url)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting(%s)", (name,))
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def log_tail(self) -> str:
        return tail(self.state_dir / "postgres" / "log" / "postgres.log", 30)
