"""orders' domain errors: one base, each error with its HTTP status and code.

``web.problems`` turns any of them into problem details, so views let them propagate.
"""

from __future__ import annotations

from web.errors import DomainError

IDEMPOTENCY_HEADER = "Idempotency-Key"


class OrdersError(DomainError):
    """A rule of orders refused the request."""


class OrderNotFound(OrdersError):
    """The customer has no such order (another customer's order does not exist for them)."""

    status = 404
    code = "not_found"

    def __init__(self, order_id=None):
        super().__init__("No such order.")
        self.order_id = order_id


class CartItemNotFound(OrdersError):
    """The book is not in the customer's cart."""

    status = 404
    code = "not_found"

    def __init__(self, book_id: int | None = None):
        super().__init__("No such book in your cart.")
        self.book_id = book_id


class IllegalTransition(OrdersError):
    """An order cannot make the requested move from its current state (HTTP 409)."""

    status = 409
    code = "illegal_transition"

    def __init__(self, *, order_id, state: str, action: str, reason: str):
        super().__init__(reason, state=state, action=action)
        self.order_id = order_id
        self.state = state
        self.action = action
        self.reason = reason


class IdempotencyKeyInFlight(OrdersError):
    """A request with this Idempotency-Key is still being processed (HTTP 409)."""

    status = 409
    code = "idempotency_key_in_flight"
    headers = {"Retry-After": "1"}

    def __init__(self, key=None):
        super().__init__(f"A request with this {IDEMPOTENCY_HEADER} is still being processed; retry in a moment.")
        self.key = key


class IdempotencyKeyReused(OrdersError):
    """This Idempotency-Key was already used with a different request body (HTTP 422)."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self, key=None):
        super().__init__(f"This {IDEMPOTENCY_HEADER} was already used with a different request body; use a new key.")
        self.key = key


class UnpaidHoldLimit(OrdersError):
    """A checkout would hold more unpaid copies than one customer may, or add to a book's copies
    that already wait for payment shop-wide up to the share allowed (HTTP 409).

    ``errors`` names the lines (or the whole order) over the limit, so a client can show why.
    """

    status = 409
    code = "unpaid_hold_limit"

    def __init__(self, detail: str, *, errors: list[dict], limits: dict[str, int]):
        super().__init__(detail, errors=errors, limits=limits)
