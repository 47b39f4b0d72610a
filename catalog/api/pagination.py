"""Keyset (cursor) pagination on any sort key, nulls included, with a capped page size.

DRF's CursorPagination needs a unique, non-null ordering field; books sort by price or
year (shared by many books, and a year may be unknown). Here the position is the sort
value plus the primary key, which is unique, and nulls sort last in both directions.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import F, Q, QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from catalog.statements import StatementCache
from web.limits import BIGINT_MAX, BIGINT_MIN, INT_MAX, INT_MIN
from web.pagination import page_size_of

#: A cursor this app writes is a few hundred characters (a 500-character title, escaped, at most
#: a few KiB); anything longer is refused before it is decoded, so no cursor can keep the base64
#: and JSON decoders busy (or recurse them to exhaustion) on the client's behalf.
MAX_CURSOR_LENGTH = 8192


@dataclass(frozen=True)
class SortKey:
    name: str  # what the client asked for, e.g. "-price"; a cursor is only valid for its own sort
    field: str  # model field or annotation
    descending: bool = False
    nullable: bool = False


def _order(field: str, *, descending: bool, nulls_last: bool, nullable: bool = True):
    if not nullable:
        # No NULLS FIRST/LAST on a column without nulls: SQLite cannot serve that clause from an
        # index and sorted every page in a temporary B-tree; the order is the same without it.
        return F(field).desc() if descending else F(field).asc()
    placement = {"nulls_last": True} if nulls_last else {"nulls_first": True}
    return F(field).desc(**placement) if descending else F(field).asc(**placement)


def _after(sort: SortKey, value, pk, *, descending: bool, nulls_last: bool) -> Q:
    """Rows strictly after position (value, pk) when walking in the given direction."""
    beyond = "lt" if descending else "gt"
    if value is None:
        condition = Q(**{f"{sort.field}__isnull": True, f"pk__{beyond}": pk})
        if not nulls_last:
            condition |= Q(**{f"{sort.field}__isnull": False})
        return condition
    condition = Q(**{f"{sort.field}__{beyond}": value}) | Q(**{sort.field: value, f"pk__{beyond}": pk})
    if sort.nullable and nulls_last:
        condition |= Q(**{f"{sort.field}__isnull": True})
    return condition


def _sort_value(model: type[models.Model], sort: SortKey, value):
    """The cursor's sort value as its column's type; a value of another type raises.

    A decoded cursor is the client's JSON: ``true`` where a date belongs, a string where a price
    belongs, or an integer beyond the column's range reached the query and failed there (a 500).
    """
    if value is None:
        if not sort.nullable:
            raise ValueError("null for a column that has no nulls")
        return None
    if isinstance(value, bool | list | dict):
        raise TypeError("not a scalar sort value")
    try:
        field = model._meta.get_field(sort.field)
    except FieldDoesNotExist:  # an annotation such as the search rank: a number
        if not isinstance(value, int | float):
            raise TypeError("not a number") from None
        return float(value)
    if isinstance(field, models.DateTimeField | models.DateField | models.CharField | models.TextField):
        if not isinstance(value, str):
            raise TypeError("not a string")
    elif isinstance(field, models.DecimalField):
        if not isinstance(value, str | int):
            raise TypeError("not a decimal")
    elif isinstance(field, models.IntegerField):
        if type(value) is not int:
            raise TypeError("not an integer")
        big = isinstance(field, models.BigIntegerField)
        low, high = (BIGINT_MIN, BIGINT_MAX) if big else (INT_MIN, INT_MAX)
        if not low <= value <= high:
            raise ValueError("beyond the column's range")
    value = field.to_python(value)
    if isinstance(field, models.DecimalField):
        # to_python accepts any digits; the column holds max_digits of them.
        field.run_validators(value)
    return value


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


class KeysetPagination(BasePagination):
    """``?cursor=`` (opaque, from ``next``/``previous``) and ``?page_size=`` (1..max, capped)."""

    default_page_size = 20
    max_page_size = 100
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def get_page_size(self, request) -> int:
        return page_size_of(
            request, self.page_size_query_param, default=self.default_page_size, maximum=self.max_page_size
        )

    def _decode(self, raw: str, sort: SortKey, model: type[models.Model]) -> tuple[object, int, bool]:
        invalid = serializers.ValidationError(
            {self.cursor_query_param: ["Invalid cursor: use the next/previous links as given."]}
        )
        if len(raw) > MAX_CURSOR_LENGTH:
            raise invalid
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)))
            value, pk, backwards, name = data["v"], data["k"], data["b"], data["s"]
        except (binascii.Error, ValueError, UnicodeError, TypeError, KeyError, RecursionError):
            raise invalid from None
        if name != sort.name:
            raise serializers.ValidationError(
                {self.cursor_query_param: ["This cursor belongs to another ordering: start again without it."]}
            )
        if (
            type(pk) is not int  # bool is an int too
            or not 1 <= pk <= BIGINT_MAX
            or not isinstance(backwards, bool)
        ):
            raise invalid
        try:
            value = _sort_value(model, sort, value)
        except (DjangoValidationError, ValueError, TypeError):
            raise invalid from None
        return value, pk, backwards

    def _encode(self, item, *, backwards: bool) -> str:
        # A page is model instances or, for the book list, rows of ``.values()``.
        if isinstance(item, dict):
            value, pk = item[self.sort.field], item["id"]
        else:
            value, pk = getattr(item, self.sort.field), item.pk
        data = {
            "v": _jsonable(value),
            "k": pk,
            "b": backwards,
            "s": self.sort.name,
        }
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        position = self._start(request, view, queryset.model)
        values = () if position is None else position[:2]
        return self._finish(lambda: list(self._page(queryset, *values)), position)

    def paginate_statement(
        self, statements: StatementCache, shape: Hashable, source: Callable[[], QuerySet], model, request, view
    ) -> list[dict]:
        """A page of the ``.values()`` rows of ``source()``, through its compiled statement (catalog/statements.py).

        ``shape`` names what shapes ``source()``'s SQL (the caller's filters); the page adds its
        own: sort, direction, page size, and whether there is a position and its value is null.
        ``source`` is only called when the statement is compiled (or cannot be).
        """
        position = self._start(request, view, model)
        null_value = position is not None and position[0] is None
        values = () if position is None else position[1:2] if null_value else position[:2]
        key = (shape, self.sort.name, self.backwards, self.page_size, position is None, null_value)

        def build(*values) -> QuerySet:
            return self._page(source(), *((None, *values) if null_value else values))

        return self._finish(lambda: statements.rows(key, build, values), position)

    def _start(self, request, view, model: type[models.Model]) -> tuple | None:
        """Read the sort, page size and cursor of ``request``: the position to start after, or None."""
        self.request = request
        self.sort = sort = view.get_sort_key(request)
        self.page_size = self.get_page_size(request)
        raw = request.query_params.get(self.cursor_query_param)
        position = self._decode(raw, sort, model) if raw else None
        self.backwards = bool(position and position[2])
        return position

    def _page(self, queryset: QuerySet, *position) -> QuerySet:
        """``queryset`` in the page's order, after ``position`` (value, pk) if given, one row more than a page."""
        sort, backwards = self.sort, self.backwards
        descending = sort.descending != backwards
        nulls_last = not backwards  # nulls last when reading forwards, hence first when reading back
        queryset = queryset.order_by(
            _order(sort.field, descending=descending, nulls_last=nulls_last, nullable=sort.nullable),
            _order("pk", descending=descending, nulls_last=True, nullable=False),
        )
        if position:
            queryset = queryset.filter(_after(sort, *position, descending=descending, nulls_last=nulls_last))
        return queryset[: self.page_size + 1]

    def _finish(self, evaluate, position) -> list:
        try:
            items = evaluate()
        except (DjangoValidationError, ValueError, TypeError):
            raise serializers.ValidationError(
                {self.cursor_query_param: ["Invalid cursor: use the next/previous links as given."]}
            ) from None
        more = len(items) > self.page_size
        items = items[: self.page_size]
        if self.backwards:
            items.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, position is not None
        self.items = items
        return items

    def _link(self, item, *, backwards: bool) -> str:
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self._encode(item, backwards=backwards))

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.items:
            return None
        return self._link(self.items[-1], backwards=False)

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.items:
            return None
        return self._link(self.items[0], backwards=True)

    def get_paginated_response(self, data) -> Response:
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position, taken from a response's next or previous link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.default_page_size}; "
                f"larger values are capped at {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
