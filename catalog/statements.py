"""Compiled statements: the SQL the ORM writes for a query's shape, kept and run again with new values.

Building a queryset and compiling it to SQL costs more than running it: for a book's detail, about
0.5 ms of ORM work around a 0.08 ms query (docs/benchmarks.md). A read whose shape repeats (the
same filters, ordering and limit; only values change) is compiled once per process, with
*sentinels* standing for its values, and run afterwards as that SQL with the request's values in
the sentinels' places, its rows converted by the ORM's own converters (aware datetimes, decimals
on SQLite) into the dicts ``.values()`` would give.

A shape whose values the ORM transforms before they reach the database (``icontains`` wraps a
word in ``%``; SQLite adapts datetimes to text) leaves a sentinel unrecognisable in the compiled
parameters: such a shape is marked as not compilable and always runs through the ORM, so a
statement is only ever reused when every value's place is known.
"""

from __future__ import annotations

import datetime
import itertools
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.query import Query
from django.utils.dateparse import parse_datetime

from web.limits import BIGINT_MAX, BIGINT_MIN

#: Sentinel values: unlikely in real data, of each slot value's own type. Within a 32-bit integer
#: column's range: the ORM drops a lookup with a value beyond its column's range (an empty result
#: for ``year > 2**40`` on PostgreSQL), and the sentinel must reach the SQL as any real value would.
_SENTINEL_BASE = 1_987_654_321
#: Statements kept per cache at the most (the oldest compiled is dropped first): the shapes a client
#: can ask for (orderings, directions, page sizes) are many, a few of them serve nearly every request.
MAX_STATEMENTS = 256


@dataclass(frozen=True)
class _Statement:
    sql: str
    params: tuple  # the compiled parameters, with slot numbers where the values go
    slots: tuple[int | None, ...]  # per parameter: the value's index, or None for a constant
    types: tuple[type, ...]  # each value's type when compiled: a value of another type goes to the ORM
    converters: tuple[tuple[int, tuple[Callable, ...], object], ...]  # (column, functions, expression)
    names: tuple[str, ...]  # the keys of each row's dict, as .values() names them


_NOT_COMPILABLE = object()


def _storable(value: object) -> bool:
    """Whether the database takes ``value`` as a parameter; the ORM answers for those it does not.

    An integer beyond 64 bits is an error in SQLite's and PostgreSQL's drivers, while the ORM turns
    a lookup with it into the empty (or full) result it stands for.
    """
    return not isinstance(value, int) or BIGINT_MIN <= value <= BIGINT_MAX


def _sentinel(value: object, index: int) -> object:
    if isinstance(value, bool):
        raise TypeError("a bool is part of a statement's shape, not a value")
    if isinstance(value, int):
        return _SENTINEL_BASE + index
    if isinstance(value, Decimal):  # a few digits: within any price column's precision
        return Decimal(_SENTINEL_BASE % 1_000_000 + index) / 100
    if isinstance(value, str):
        return f"quire-sentinel-{_SENTINEL_BASE + index}"
    raise TypeError(f"no sentinel for a {type(value).__name__}")


class StatementCache:
    """Compiled ``.values()`` statements of one database alias, by a shape key the caller chooses.

    The key must name everything that shapes the SQL (filters present, ordering, direction, page
    size, which values are None); the values passed with it are only what varies within a shape,
    each valid for its column (a value of another type than the one compiled runs through the ORM).
    """

    def clear(self) -> None:
        """Forget every compiled statement (tests that change the schema or settings)."""
        with self._lock:
            self._statements.clear()

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._statements: dict[Hashable, _Statement | object] = {}  # in the order compiled
        self._lock = threading.Lock()

    def rows(self, key: Hashable, build: Callable[..., QuerySet], values: Sequence, *, cursor=None) -> list[dict]:
        """The rows of ``build(*values)`` (a ``.values()`` queryset), from the compiled statement of ``key``.

        ``cursor``: one of this alias's, for a caller running several statements (a cursor costs as
        much to make as a short query to run); otherwise one is opened for this statement.
        """
        statement = self._statements.get(key)
        if statement is None:
            with self._lock:
                statement = self._statements.get(key)
                if statement is None:
                    if len(self._statements) >= MAX_STATEMENTS:
                        del self._statements[next(iter(self._statements))]  # the oldest compiled
                    statement = self._statements[key] = self._compile(build, values)
        if (
            statement is _NOT_COMPILABLE
            or any(type(value) is not kind for value, kind in zip(values, statement.types, strict=True))
            or not all(_storable(value) for value in values)
        ):
            return list(build(*values))
        slots = zip(statement.params, statement.slots, strict=True)
        params = [constant if slot is None else values[slot] for constant, slot in slots]
        connection = connections[self.alias]
        if cursor is None:
            with connection.cursor() as cursor:
                cursor.execute(statement.sql, params)
                results = cursor.fetchall()
        else:
            cursor.execute(statement.sql, params)
            results = cursor.fetchall()
        names = statement.names
        if not statement.converters:
            return [dict(zip(names, row, strict=True)) for row in results]
        rows = []
        for row in results:
            row = list(row)
            for position, functions, expression in statement.converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[position] = value
            rows.append(dict(zip(names, row, strict=True)))
        return rows

    def _compile(self, build: Callable[..., QuerySet], values: Sequence) -> _Statement | object:
        try:
            sentinels = [_sentinel(value, index) for index, value in enumerate(values)]
        except TypeError:
            return _NOT_COMPILABLE
        try:
            queryset = build(*sentinels)
            query = queryset.query
            compiler = query.get_compiler(using=self.alias)
            sql, params = compiler.as_sql()
        except Exception:  # EmptyResultSet, FullResultSet, a value refused...: the ORM answers this shape
            return _NOT_COMPILABLE
        slots = tuple(sentinels.index(param) if param in sentinels else None for param in params)
        # Every value present as given (in one place or several), and none inside a constant:
        # otherwise the ORM changed a value on its way to the database.
        found = {slot for slot in slots if slot is not None}
        altered = any(
            isinstance(param, str) and slot is None and any(str(s) in param for s in sentinels)
            for param, slot in zip(params, slots, strict=True)
        )
        if found != set(range(len(values))) or altered or not _is_values_query(queryset):
            return _NOT_COMPILABLE
        return _Statement(
            sql=sql,
            params=tuple(params),
            slots=slots,
            types=tuple(type(value) for value in values),
            converters=_converters(compiler),
            names=_column_names(query),
        )


def _converters(compiler) -> tuple[tuple[int, tuple[Callable, ...], object], ...]:
    """The ORM's converters of each column that has any, found once per statement rather than per run.

    What a backend converts depends on the column and the alias's settings, not on a thread's
    connection. SQLite's datetime converter parses and makes each value aware through the time zone
    machinery: with the database in UTC, the same aware value is made directly (a third of the cost
    of reading a page of books).
    """
    connection = compiler.connection
    columns = compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]])
    utc = connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone is datetime.UTC

    def faster(convert: Callable) -> Callable:
        return _utc_datetime if utc and _is_sqlite_datetime_converter(convert) else convert

    return tuple(
        (position, tuple(faster(convert) for convert in functions), expression)
        for position, (functions, expression) in columns.items()
    )


def _is_sqlite_datetime_converter(convert: Callable) -> bool:
    from django.db.backends.sqlite3.operations import DatabaseOperations

    return getattr(convert, "__func__", None) is DatabaseOperations.convert_datetimefield_value


def _utc_datetime(value, expression, connection):
    """SQLite's datetime converter for a database in UTC: the same aware value, made without looking the zone up."""
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        value = parse_datetime(value)
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def _column_names(query: Query) -> tuple[str, ...]:
    """The keys of a row's dict, as Django's ValuesIterable names the columns."""
    if query.selected:
        return tuple(query.selected)
    return tuple(itertools.chain(query.extra_select, query.values_select, query.annotation_select))


def _is_values_query(queryset: QuerySet) -> bool:
    from django.db.models.query import ValuesIterable

    return queryset._iterable_class is ValuesIterable
