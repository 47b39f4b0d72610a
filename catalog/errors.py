"""catalog's domain errors: one base, each error with its HTTP status and code.

``web.problems`` turns any of them into problem details; the saga's errors are raised in
handlers, where they make the event be retried (``StockConflict``) or parked for an
operator (``ReservationStateError``).
"""

from __future__ import annotations

from web.errors import DomainError


class CatalogError(DomainError):
    """A rule of catalog refused the request."""


class StockConflict(CatalogError):
    """A guarded stock update matched no row: stock moved under us. The transaction is rolled back
    and the caller (a handler) is retried, which re-reads the stock."""

    code = "stock_conflict"


class ReservationStateError(CatalogError):
    """An order event that makes no sense for what catalog holds for the order (e.g. shipping an
    order whose stock was never reserved). Raised so that the event is parked for an operator."""

    code = "reservation_state"


class CatalogImportError(CatalogError):
    """The file as a whole cannot be imported (unreadable, required columns missing)."""

    status = 422
    code = "catalog_import_refused"
