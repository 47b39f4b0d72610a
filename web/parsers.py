"""DRF's JSON parser with a bound on nesting: a deep body is a 400 problem, not a RecursionError (500)."""

from __future__ import annotations

import codecs
import json
import re
from itertools import accumulate

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from web.limits import JSON_MAX_DEPTH

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)  # possessive: no backtracking on long strings
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects (brackets inside strings do not count)."""
    steps = (_STEP[bracket] for bracket in _BRACKET.findall(_STRING.sub("", text)))
    return max(accumulate(steps, initial=0))


class JSONParser(parsers.JSONParser):
    """Refuses bodies nested deeper than ``web.limits.JSON_MAX_DEPTH`` before decoding them.

    The standard decoder recurses once per level and fails with RecursionError about a thousand
    levels down, deep inside DRF's request handling; the depth is checked first, on the text.
    """

    max_depth = JSON_MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeError, LookupError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
        if json_depth(text) > self.max_depth:
            raise ParseError(f"JSON parse error - the body nests deeper than {self.max_depth} levels.")
        try:
            return json.loads(text, parse_constant=_no_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None


def _no_constant(name: str):
    # NaN and Infinity are not JSON (RFC 8259); DRF's own parser refuses them as well.
    raise ValueError(f"{name} is not valid JSON")
