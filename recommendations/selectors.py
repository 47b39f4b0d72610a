"""recommendations' read queries: answered from this process's in-memory model, never from another module."""

from __future__ import annotations

import uuid

from recommendations import store
from recommendations.engine import Recommendation, UnknownBook
from recommendations.models import ModelSnapshot, ModelState

__all__ = [
    "UnknownBook",
    "model_status",
    "recommendations_for_customer",
    "recommendations_popular",
    "recommendations_similar",
]


def recommendations_similar(*, book_id: int, limit: int) -> list[Recommendation]:
    """Books to show next to ``book_id``; raises :class:`UnknownBook` if catalog never published it."""
    with store.current_engine() as engine:
        return engine.similar(book_id, limit=limit)


def recommendations_for_customer(*, customer_id: uuid.UUID, limit: int) -> list[Recommendation]:
    """Picks for a customer, never a book they own or a withdrawn one; popular books for a newcomer."""
    with store.current_engine() as engine:
        return engine.for_customer(customer_id, limit=limit)


def recommendations_popular(*, limit: int, genre: str | None = None) -> list[Recommendation]:
    with store.current_engine() as engine:
        return engine.popular(limit=limit, genre=genre)


def model_status() -> dict:
    """What the operator sees: the database's model state and this process's cached copy."""
    state = ModelState.objects.using(store.ALIAS).filter(pk=ModelState.SINGLETON_ID).first()
    snapshot = ModelSnapshot.objects.using(store.ALIAS).defer("data").first()
    with store.current_engine() as engine:
        stats = engine.stats()
    loaded = store.loaded_version()
    return {
        "generation": str(state.generation) if state else None,
        "version": state.version if state else 0,
        "journal_rows": state.changes_since_snapshot if state else 0,
        "snapshot_version": snapshot.version if snapshot else None,
        "snapshot_bytes": snapshot.size_bytes if snapshot else 0,
        "loaded_version": loaded[1] if loaded else None,
        **stats,
    }
