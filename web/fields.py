"""Serializer fields that take only the JSON type they declare (DRF's take 0 for "0" and 1 for true)."""

from __future__ import annotations

import re

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string, not a number that DRF would turn into one."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON's true or false (and "true"/"false" from the browsable API's form), not 0, 1 or "yes"."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)


class WholeNumberField(serializers.IntegerField):
    """A whole number written in digits (``12``, ``-3``), as a schema's ``integer`` in a query string is.

    DRF's IntegerField also takes ``12.0``, `` 12`` and ``+12``, values the OpenAPI schema declares invalid:
    a client that relies on them would break on any stricter server, so they are a 400 here.
    """

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]+", data):
            self.fail("invalid")
        return super().to_internal_value(data)
