"""Domain errors of orders; the API turns them into problem details."""

from __future__ import annotations


class IllegalTransition(Exception):
    """An order cannot make the requested move from its current state (HTTP 409)."""

    def __init__(self, *, order_id, state: str, action: str, reason: str):
        super().__init__(reason)
        self.order_id = order_id
        self.state = state
        self.action = action
        self.reason = reason


class IdempotencyKeyInFlight(Exception):
    """A request with this Idempotency-Key is still being processed (HTTP 409)."""


class IdempotencyKeyReused(Exception):
    """This Idempotency-Key was already used with a different request body (HTTP 422)."""
