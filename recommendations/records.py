"""The engine's plain records: the reasons of a pick, a book's metadata, a recommendation.

Apart from :mod:`recommendations.engine` so that what imports only these (the API's
serializers, the selectors, the store's readers) does not import numpy and scipy: every
process of the shop starts (and every command runs) without them until a model is built,
loaded or asked (0.3 s of CPU at each start).
"""

from __future__ import annotations

from dataclasses import dataclass

BOUGHT_TOGETHER = "bought_together"
MORE_LIKE_THIS = "more_like_this"
POPULAR = "popular"
REASONS = (BOUGHT_TOGETHER, MORE_LIKE_THIS, POPULAR)


@dataclass(frozen=True)
class BookMeta:
    book_id: int
    title: str
    authors: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    language: str = ""
    active: bool = True


@dataclass(frozen=True)
class Recommendation:
    book_id: int
    title: str
    score: float
    reason: str
    because: tuple[int, ...] = ()
