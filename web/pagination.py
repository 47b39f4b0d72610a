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

    def get_offset(self, request) -> int:
        offset = super().get_offset(request)
        if offset > BIGINT_MAX:
            raise serializers.ValidationError({self.offset_query_param: [f"Must be at most {BIGINT_MAX}."]})
        return offset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.default_limit}; larger values are capped at {self.max_limit})."
                )
                parameter["schema"] = {"type": "integer", "minimum": 0}
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
        return parameters
