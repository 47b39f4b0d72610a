"""accounts' public contract: the events it publishes. The only file other modules may import."""

from __future__ import annotations

import uuid

from messaging import Event


class CustomerRegistered(Event):
    """A customer account was created."""

    event_type = "accounts.CustomerRegistered"
    event_version = 1
    aggregate_field = "customer_id"

    customer_id: uuid.UUID
    email: str
    name: str


class CustomerUpdated(Event):
    """A customer's profile (email or name) changed."""

    event_type = "accounts.CustomerUpdated"
    event_version = 1
    aggregate_field = "customer_id"

    customer_id: uuid.UUID
    email: str
    name: str
