"""What drf-spectacular cannot read from the serializers: fields only staff receive."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension

from catalog.api.serializers import STAFF_ONLY_BOOK_FIELDS


class BookSerializerSchema(OpenApiSerializerExtension):
    """A book as staff see it, with the staff-only fields optional: customers never receive them."""

    target_class = "catalog.api.serializers.BookSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["required"] = [name for name in schema.get("required", []) if name not in STAFF_ONLY_BOOK_FIELDS]
        for name in STAFF_ONLY_BOOK_FIELDS:
            schema["properties"][name]["description"] = "Staff only: left out for everyone else."
        return schema
