"""Database settings per alias, from one URL variable per module."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

SUPPORTED_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}
#: Django's backends and django-prometheus's drop-in wrappers of them, which count queries,
#: errors and connections per alias for /metrics (same vendor, same features, same SQL); SQLite's
#: through config/backends/sqlite3, which makes its counting cursor class once per connection.
INSTRUMENTED_ENGINES = {
    "django.db.backends.sqlite3": "config.backends.sqlite3",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
}


def url_variable(alias: str) -> str:
    return "DATABASE_URL" if alias == "default" else f"{alias.upper()}_DATABASE_URL"


def database_config(env: environ.Env, alias: str, default_url: str) -> dict:
    """Parse the URL for one alias, failing with a sentence that says what to set."""
    variable = url_variable(alias)
    url = env.str(variable, default=default_url)
    example = "postgres://user:password@127.0.0.1:5432/quire_" + alias + " or sqlite:///var/" + alias + ".sqlite3"
    parts = urlsplit(url)
    if parts.scheme not in SUPPORTED_SCHEMES:
        raise ImproperlyConfigured(
            f"{variable}={url!r} is not a database URL Quire understands: set it like {example}."
        )
    if parts.scheme != "sqlite" and not (parts.hostname and parts.path.strip("/")):
        raise ImproperlyConfigured(f"{variable}={url!r} lacks a host or a database name: set it like {example}.")
    try:
        config = environ.Env.db_url_config(url)
    except Exception as error:  # environ raises several types for a broken URL
        raise ImproperlyConfigured(f"{variable}={url!r} cannot be parsed ({error}): set it like {example}.") from error
    if parts.scheme == "sqlite":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        options = config.setdefault("OPTIONS", {})
        # A busy timeout and IMMEDIATE transactions let request threads and the in-process relay
        # share a file without "database is locked" upgrades; WAL with synchronous=NORMAL keeps
        # a commit from costing an fsync (a crash may lose the last commits, never corrupt).
        options.setdefault("timeout", 20)
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        # Test databases in memory, as Django makes them for SQLite anyway; said explicitly because
        # pytest-django knows SQLite only by Django's own engine name, not the instrumented one.
        config.setdefault("TEST", {}).setdefault("NAME", ":memory:")
    config["ENGINE"] = INSTRUMENTED_ENGINES.get(config["ENGINE"], config["ENGINE"])
    config.setdefault("ATOMIC_REQUESTS", False)
    if alias != "default":
        # Module databases never depend on contrib's: a test may declare only its module's.
        config.setdefault("TEST", {})["DEPENDENCIES"] = []
    # Connections are kept between requests: a new one per request cost a third of a book-list request
    # on PostgreSQL, and on SQLite opening the file and setting it up (pragmas, Django's functions)
    # was a quarter of a book's detail (docs/benchmarks.md). The health check makes a connection the
    # server dropped (restart, idle timeout) fail over to a new one at the next request, not a 500.
    max_age = env.str("DATABASE_CONN_MAX_AGE", default="").strip()
    try:
        config["CONN_MAX_AGE"] = int(max_age) if max_age else 60
    except ValueError as error:
        raise ImproperlyConfigured(
            f"DATABASE_CONN_MAX_AGE={max_age!r} is not a whole number of seconds: set it like 60 (0 = per request)."
        ) from error
    config["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
    return config
