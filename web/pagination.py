"""The page-number-free pagination every list that is not keyset-paginated shares."""

from __future__ import annotations

from rest_framework import pagination, serializers

from web.limits import BIGINT_MAX


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=`` (capped at ``max_limit``, as the catalog caps ``page_size``) and ``?offset=``.

    DRF leaves both unbounded: ``?limit=10**6`` read a million rows, and an offset beyond 64 bits
    overflowed the database driver (a 500).
    """

    default_limit = 20
    max_limit = 100

    def get_limit(self, request) -> int:
        # DRF reads a bad limit (-1, "x") as the default; here it is a 400, and a large one is capped.
        raw = request.query_params.get(self.limit_query_param)
        if raw in (None, ""):
            return self.default_limit
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if limit < 1:
            raise serializers.ValidationError({self.limit_query_param: ["Must be a whole number from 1."]})
        return min(limit, self.max_limit)

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
