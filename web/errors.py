"""The base of every module's domain errors.

A module declares its errors in ``<module>/errors.py`` as subclasses of :class:`DomainError`,
each with the HTTP status and the machine-readable code it stands for. Services raise them;
views do not catch them: ``web.problems.problem_exception_handler`` turns any of them into a
problem details response in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A rule of the domain refused the request.

    ``status`` is the HTTP status an API answers with, ``code`` the stable word a client may
    branch on; both can be overridden per instance. ``extra`` members are added to the
    problem body (for example the conflicting lines of a stock reservation); ``headers`` are
    added to the response (for example ``Retry-After``).
    """

    status: int = 409
    code: str = "conflict"
    headers: Mapping[str, str] = {}

    def __init__(self, detail: str = "", *, status: int | None = None, code: str | None = None, **extra: Any):
        super().__init__(detail or self.__doc__ or type(self).__name__)
        self.detail = detail or (self.__doc__ or type(self).__name__).strip()
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.extra = extra

    def problem_members(self) -> dict[str, Any]:
        """What the problem body carries beyond type, title, status and detail."""
        return {"code": self.code, **self.extra}
