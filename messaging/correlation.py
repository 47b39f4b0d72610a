"""A correlation id that follows one request through every event it causes."""

from __future__ import annotations

import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("quire_correlation_id", default="")


def current_correlation_id() -> str:
    return _current.get()


@contextlib.contextmanager
def correlation(correlation_id: str) -> Iterator[None]:
    token = _current.set(correlation_id)
    try:
        yield
    finally:
        _current.reset(token)


class CorrelationIdMiddleware:
    """Take the caller's X-Correlation-ID (if well-formed) or make one, and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(HEADER, "")
        correlation_id = given if _VALID.match(given) else uuid.uuid4().hex
        with correlation(correlation_id):
            response = self.get_response(request)
        response[HEADER] = correlation_id
        return response
