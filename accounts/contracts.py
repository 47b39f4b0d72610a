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


class CustomerDeactivated(Event):
    """A customer may no longer sign in; every module refuses their tokens once it has seen this."""

    event_type = "accounts.CustomerDeactivated"
    event_version = 1
    aggregate_field = "customer_id"

    customer_id: uuid.UUID


class CustomerReactivated(Event):
    """A deactivated customer may sign in again; modules accept their tokens again."""

    event_type = "accounts.CustomerReactivated"
    event_version = 1
    aggregate_field = "customer_id"

    customer_id: uuid.UUID


class CustomerDeleted(Event):
    """A customer account was deleted; its tokens are refused everywhere for good."""

    event_type = "accounts.CustomerDeleted"
    event_version = 1
    aggregate_field = "customer_id"

    customer_id: uuid.UUID
