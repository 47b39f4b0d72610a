"""The page-number-free pagination every list that is not keyset-paginated shares."""

from __future__ import annotations

from rest_framework import pagination, serializers

from web.limits import BIGINT_MAX


def page_size_of(request, name: str, *, default: int, maximum: int) -> int:
    """A page size from the query: absent means ``default``, above ``maximum`` is capped, below 1 is a 400."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise serializers.ValidationError({name: [f"Must be a whole number from 1 (at most {maximum} are sent)."]})
    return min(size, maximum)


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=`` (capped at ``max_limit``, as the catalog caps ``page_size``) and ``?offset=``.

    DRF leaves both unbounded: ``?limit=10**6`` read a million rows, and an offset beyond 64 bits
    overflowed the database driver (a 500).
    """

    default_limit = 20
    max_limit = 100

    def get_limit(self, request) -> int:
        # DRF reads a bad limit (-1, "x") as the default; here it is a 400, and a large one is capped.
        return page_size_of(request, self.limit_query_param, default=self.default_limit, maximum=self.max_limit)

    def get_offset(self, request) -> int:
        # DRF reads a bad offset (-1, "x") as 0; here it is a 400 that names it, as other parameters are.
        raw = request.query_params.get(self.offset_query_param)
        if raw in (None, ""):
            return 0
        try:
            offset = int(raw)
        except ValueError:
            offset = -1
        if not 0 <= offset <= BIGINT_MAX:
            raise serializers.ValidationError(
                {self.offset_query_param: [f"Must be a whole number from 0 to {BIGINT_MAX}."]}
            )
        return offset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.default_limit}; larger values are capped at {self.max_limit})."
                )
                parameter["schema"] = {"type": "integer", "minimum": 1}
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
        return parameters
