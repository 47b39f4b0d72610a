"""recommendations' read queries: answered from this process's in-memory model, never from another module."""

from __future__ import annotations

import uuid

from recommendations import store
from recommendations.records import Recommendation


def recommendations_similar(*, book_id: int, limit: int) -> list[Recommendation]:
    """Books to show next to ``book_id``; raises ``UnknownBook`` (errors.py) if catalog never published it."""
    with store.current_engine() as engine:
        return engine.similar(book_id, limit=limit)


def recommendations_for_customer(*, customer_id: uuid.UUID, limit: int) -> list[Recommendation]:
    """Picks for a customer, never a book they own or a withdrawn one; popular books for a newcomer."""
    with store.current_engine() as engine:
        return engine.for_customer(customer_id, limit=limit)


def recommendations_popular(*, limit: int, genre: str | None = None) -> list[Recommendation]:
    with store.current_engine() as engine:
        return engine.popular(limit=limit, genre=genre)
