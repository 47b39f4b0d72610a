"""Bounds that every module's input meets before it reaches a database or a parser.

A value outside them is a 400 (or 413) problem naming what was too large, never a database
overflow turned into a 500: SQLite and PostgreSQL both refuse integers beyond 64 bits, and
PostgreSQL's ``integer`` columns refuse anything beyond 32.
"""

from __future__ import annotations

#: The range of a 64-bit signed integer: ids (BigAutoField), offsets, LIMIT values.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
#: The range of a 32-bit ``integer`` column (PostgreSQL's IntegerField, PositiveIntegerField).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: Nesting deeper than this in a JSON body is refused: no API of Quire nests beyond a few levels.
JSON_MAX_DEPTH = 32


def too_large_detail(limit: int) -> str:
    """The 413 problem's detail, the same from the middleware and from Django's own read limit."""
    return f"The request body is larger than this shop accepts ({limit} bytes)."
