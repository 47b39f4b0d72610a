"""recommendations' domain errors: one base, each error with its HTTP status and code."""

from __future__ import annotations

from web.errors import DomainError


class RecommendationsError(DomainError):
    """A rule of recommendations refused the request."""


class UnknownBook(RecommendationsError, LookupError):
    """The engine has no metadata for this book id (catalog never published it)."""

    status = 404
    code = "not_found"

    def __init__(self, book_id: int):
        super().__init__(f"No book with id {book_id} is known to recommendations.")
        self.book_id = book_id
