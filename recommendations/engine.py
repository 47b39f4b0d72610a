"""The recommendation engine: plain Python with numpy and scipy, no Django.

Services, handlers, the API, the evaluation and the benchmark all score with this one
class, so what is measured is what is served.

Three parts, blended per candidate book:

- **bought together**: item-to-item cosine over the binary customer x book matrix
  ``X``. ``C = X^T X`` counts, for every pair of books, the customers who own both;
  ``owners[i] = C[i, i]``; ``sim(i, j) = C[i, j] / sqrt(owners[i] * owners[j])``.
  An ownership change of one customer touches only the row and column of that book
  against that customer's basket, so purchases are applied incrementally in O(basket).
- **more like this**: TF-IDF cosine over authors, genres, series and title terms (and a
  light language feature), so a book nobody bought yet still has neighbours.
- **popular**: time-decayed purchases. Each purchase line adds ``2^((t - EPOCH) / half_life)``
  to its book; dividing by the same factor at any later instant gives the decayed count,
  so ranking needs no rescaling, adding is order-independent and a cancellation subtracts
  exactly the term its purchase added.

The blend is ``1.0 * bought_together + 0.5 * more_like_this + 0.02 * popular``, with
"more like this" shrunk for books whose co-purchases already say more (see
:class:`Weights`); every pick names its reason and the books behind it.

Book and customer ids are external; the engine maps them to dense indices. Customer
keys are opaque hashables (UUIDs in the shop, ints in the evaluation).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations.errors import UnknownBook
from recommendations.records import BOUGHT_TOGETHER, MORE_LIKE_THIS, POPULAR, REASONS, BookMeta, Recommendation

__all__ = ["BOUGHT_TOGETHER", "MORE_LIKE_THIS", "POPULAR", "REASONS", "BookMeta", "Engine", "Recommendation"]

#: Reference instant of the popularity terms (2020-01-01T00:00:00Z). With a 30-day
#: half-life the terms stay within float64 range until about 2100.
EPOCH_SECONDS = 1_577_836_800.0
HALF_LIFE_DAYS = 30.0
#: Layout version of :meth:`Engine.export_state`; a loader refuses another layout.
STATE_FORMAT = 1

#: Basket books considered for a customer's picks: the most recent ones.
MAX_BASKET = 50
#: Basket books named in ``because``.
MAX_BECAUSE = 3
#: Overlay entries after which the co-occurrence overlay is merged into the CSR base.
CO_DELTA_LIMIT = 300_000
#: Weight of a customer's purchase relative to the next newer one. 1.0 (all alike) scored
#: best in the evaluation; lower it if tastes drift (see docs/recommendations.md).
RECENCY = 1.0


@dataclass(frozen=True)
class Weights:
    """How much each part counts in the blend (each part is scaled to [0, 1] first)."""

    bought_together: float = 1.0
    more_like_this: float = 0.5
    popular: float = 0.02
    #: Trust metadata less where purchases say more: per basket book, "more like this"
    #: is weighted by ``s / (s + owners)`` (a prior worth ``s`` owners); 0 turns it off.
    content_support: float = 10.0

    def as_array(self) -> np.ndarray:
        return np.array([self.bought_together, self.more_like_this, self.popular], dtype=np.float64)


BLEND = Weights()
#: The blend and each part alone, as the evaluation reports them.
VARIANTS: dict[str, Weights] = {
    "blend": BLEND,
    BOUGHT_TOGETHER: Weights(1.0, 0.0, 0.0),
    MORE_LIKE_THIS: Weights(0.0, 1.0, 0.0, content_support=0.0),
    POPULAR: Weights(0.0, 0.0, 1.0),
}


# --- content features -------------------------------------------------------------

_SERIES = re.compile(r"\(\s*([^()]*?)\s*,?\s*#\s*[\d.]+(?:\s*[-\u2013]\s*[\d.]+)?\s*\)\s*$")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "de", "del", "der", "die", "el", "for", "from", "how", "in"}
    | {"into", "is", "it", "la", "le", "les", "of", "on", "or", "the", "to", "un", "une", "vol", "volume", "what"}
    | {"when", "who", "why", "with", "book", "books", "novel", "edition"}
)
_ENGLISH = frozenset({"en", "eng", "en-us", "en-gb", "en-ca", "en-au", "en-in"})
AUTHOR_WEIGHT = 1.0
CO_AUTHOR_WEIGHT = 0.5
GENRE_WEIGHT = 1.0
SERIES_WEIGHT = 1.5
TITLE_TERM_WEIGHT = 0.3
LANGUAGE_WEIGHT = 0.3


def normalize_text(text: str) -> str:
    """Lower case, accents stripped, whitespace collapsed: ``"Mary GrandPré"`` -> ``"mary grandpre"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.lower().split())


def normalize_language(code: str) -> str:
    code = normalize_text(code)
    return "en" if code in _ENGLISH else code


def split_series(title: str) -> tuple[str, str]:
    """``"Catching Fire (The Hunger Games, #2)"`` -> ``("The Hunger Games", "Catching Fire")``."""
    match = _SERIES.search(title)
    if not match:
        return "", title
    return match.group(1).strip(" ,"), title[: match.start()].strip()


def title_terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize_text(text)) if len(w) > 1 and w not in _STOPWORDS and not w.isdigit()]


def book_features(meta: BookMeta) -> dict[str, float]:
    """The weighted terms of a book (before IDF): who wrote it, what it is, what it is called."""
    features: dict[str, float] = {}

    def add(key: str, weight: float) -> None:
        features[key] = max(features.get(key, 0.0), weight)

    for position, author in enumerate(normalize_text(a) for a in meta.authors):
        if author:
            add(f"a:{author}", AUTHOR_WEIGHT if position == 0 else CO_AUTHOR_WEIGHT)
    for genre in meta.genres:
        if normalized := normalize_text(genre):
            add(f"g:{normalized}", GENRE_WEIGHT)
    series, plain_title = split_series(meta.title)
    if series_key := normalize_text(series):
        add(f"s:{series_key}", SERIES_WEIGHT)
    for term in title_terms(plain_title):
        add(f"t:{term}", TITLE_TERM_WEIGHT)
    if language := normalize_language(meta.language):
        add(f"l:{language}", LANGUAGE_WEIGHT)
    return features


#: A language carried by more than this share of the catalogue (English in an English
#: shop) says nothing and would make every book a faint neighbour of every other; a
#: minority language stays a feature.
MAX_LANGUAGE_SHARE = 0.5


class ContentIndex:
    """L2-normalised TF-IDF rows of every known book; similarity is a sparse dot product."""

    def __init__(self, features: dict[int, dict[str, float]], size: int):
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for idx, terms in features.items():
            for term, weight in terms.items():
                rows.append(idx)
                cols.append(vocabulary.setdefault(term, len(vocabulary)))
                vals.append(weight)
        row_arr = np.asarray(rows, dtype=np.int64)
        col_arr = np.asarray(cols, dtype=np.int64)
        val_arr = np.asarray(vals, dtype=np.float64)
        document_count = max(len(features), 1)
        df = np.bincount(col_arr, minlength=len(vocabulary)).astype(np.float64)
        idf = np.log((1.0 + document_count) / (1.0 + df)) + 1.0
        majority = np.array([term.startswith("l:") for term in vocabulary], dtype=bool) & (
            df > MAX_LANGUAGE_SHARE * document_count
        )
        idf[majority] = 0.0
        weighted = val_arr * idf[col_arr] if len(col_arr) else val_arr
        matrix = sp.csr_matrix((weighted, (row_arr, col_arr)), shape=(size, max(len(vocabulary), 1)))
        matrix.eliminate_zeros()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.matrix = sp.csr_matrix(sp.diags(inverse) @ matrix)
        self.matrix.sort_indices()
        self.transposed = self.matrix.T.tocsr()
        self.size = size

    def weighted_scores(self, books: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, _Entries]:
        """``sum_b weights[b] * cos(b, j)`` for every book ``j``, and the books' own terms.

        The weighted terms of all given books are merged into one query first, so a
        common term's postings are read once, not once per book.
        """
        terms = _gather(self.matrix, books)
        unique_terms, term_positions = np.unique(terms.cols, return_inverse=True)
        query = np.bincount(term_positions, weights=terms.vals * weights[terms.rows], minlength=len(unique_terms))
        postings = _gather(self.transposed, unique_terms)
        dense = np.bincount(postings.cols, weights=postings.vals * query[postings.rows], minlength=self.size)
        return dense, _Entries(terms.rows, term_positions, terms.vals * weights[terms.rows], unique_terms)

    def contributions(self, entries: _Entries, basket_size: int, chosen: np.ndarray) -> np.ndarray:
        """``weights[b] * cos(b, j)`` for each basket book ``b`` (rows) and chosen book ``j`` (columns)."""
        unique_terms = entries.extra
        basket_terms = np.zeros((basket_size, len(unique_terms)))
        np.add.at(basket_terms, (entries.rows, entries.cols), entries.vals)
        chosen_terms = _gather(self.matrix, chosen)
        position = np.searchsorted(unique_terms, chosen_terms.cols)
        position = np.minimum(position, max(len(unique_terms) - 1, 0))
        shared = len(unique_terms) > 0
        matches = (unique_terms[position] == chosen_terms.cols) if shared else np.zeros(0, dtype=bool)
        picked_terms = np.zeros((len(chosen), len(unique_terms)))
        np.add.at(picked_terms, (chosen_terms.rows[matches], position[matches]), chosen_terms.vals[matches])
        return basket_terms @ picked_terms.T


@dataclass
class _Entries:
    """Sparse entries (row, column, value); ``extra`` carries what a caller needs to read them back."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    extra: np.ndarray | None = None


def _gather(matrix: sp.csr_matrix, rows: np.ndarray) -> _Entries:
    """The stored entries of some rows of a CSR matrix, without building a new matrix."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    total = int(lengths.sum())
    row_of_entry = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.repeat(starts, lengths) + offsets
    return _Entries(row_of_entry, matrix.indices[positions], matrix.data[positions])


# --- the engine ---------------------------------------------------------------------


def decay_term(at_seconds: float | np.ndarray) -> float | np.ndarray:
    """The popularity a purchase at ``at_seconds`` (POSIX time) adds to its book."""
    return np.exp2((np.asarray(at_seconds, dtype=np.float64) - EPOCH_SECONDS) / (HALF_LIFE_DAYS * 86_400.0))


class Engine:
    """The in-memory model. Not thread-safe: callers serialise access (see ``store``)."""

    def __init__(self, books: Iterable[BookMeta] = ()):
        self._book_index: dict[int, int] = {}
        self._book_ids = np.zeros(0, dtype=np.int64)
        self._meta: list[BookMeta | None] = []
        self._features: dict[int, dict[str, float]] = {}
        self._capacity = 0
        self._servable = np.zeros(0, dtype=bool)
        self._owners = np.zeros(0, dtype=np.int64)
        self._popularity = np.zeros(0, dtype=np.float64)
        # Counts are stored as float64 (exact up to 2^53) so that scoring multiplies the CSR
        # base in place; a mixed dtype would make scipy convert the whole matrix per request.
        self._co_base = sp.csr_matrix((0, 0), dtype=np.float64)
        self._co_delta: dict[int, dict[int, int]] = {}
        self._co_delta_size = 0
        self._customer_index: dict[Hashable, int] = {}
        self._customers: list[Hashable] = []
        self._basket_indptr = np.zeros(1, dtype=np.int64)
        self._basket_indices = np.zeros(0, dtype=np.int32)
        self._basket_overlay: dict[int, dict[int, None]] = {}
        self._content: ContentIndex | None = None
        self._genre_index: dict[str, np.ndarray] | None = None
        self._popular_max: float | None = None
        self._inverse_root: np.ndarray | None = None
        for meta in books:
            self.upsert_book(meta)

    # -- books -------------------------------------------------------------------

    def _ensure_capacity(self, size: int) -> None:
        if size <= self._capacity:
            return
        capacity = max(size, 2 * self._capacity, 1024)
        grow = capacity - self._capacity
        self._book_ids = np.concatenate([self._book_ids, np.full(grow, -1, dtype=np.int64)])
        self._servable = np.concatenate([self._servable, np.zeros(grow, dtype=bool)])
        self._owners = np.concatenate([self._owners, np.zeros(grow, dtype=np.int64)])
        self._popularity = np.concatenate([self._popularity, np.zeros(grow, dtype=np.float64)])
        self._co_base.resize((capacity, capacity))
        self._capacity = capacity
        self._content = None

    def _book_idx(self, book_id: int) -> int:
        idx = self._book_index.get(book_id)
        if idx is None:
            idx = len(self._meta)
            self._ensure_capacity(idx + 1)
            self._book_index[book_id] = idx
            self._book_ids[idx] = book_id
            self._meta.append(None)
        return idx

    def upsert_book(self, meta: BookMeta) -> None:
        idx = self._book_idx(meta.book_id)
        previous = self._meta[idx]
        self._meta[idx] = meta
        self._servable[idx] = meta.active
        if previous is None or previous.genres != meta.genres:
            self._genre_index = None
        self._popular_max = None
        features = book_features(meta)
        if self._features.get(idx) != features:
            self._features[idx] = features
            self._content = None

    def knows_book(self, book_id: int) -> bool:
        idx = self._book_index.get(book_id)
        return idx is not None and self._meta[idx] is not None

    @property
    def book_count(self) -> int:
        return sum(meta is not None for meta in self._meta)

    # -- purchases -------------------------------------------------------------------

    def _customer_idx(self, customer: Hashable) -> int:
        idx = self._customer_index.get(customer)
        if idx is None:
            idx = len(self._customers)
            self._customer_index[customer] = idx
            self._customers.append(customer)
        return idx

    def _basket_of(self, customer_idx: int) -> Sequence[int]:
        overlay = self._basket_overlay.get(customer_idx)
        if overlay is not None:
            return list(overlay)
        if customer_idx < len(self._basket_indptr) - 1:
            start, end = self._basket_indptr[customer_idx], self._basket_indptr[customer_idx + 1]
            return self._basket_indices[start:end].tolist()
        return []

    def _editable_basket(self, customer_idx: int) -> dict[int, None]:
        basket = self._basket_overlay.get(customer_idx)
        if basket is None:
            basket = dict.fromkeys(self._basket_of(customer_idx))
            self._basket_overlay[customer_idx] = basket
        return basket

    def _co_add(self, book: int, others: Iterable[int], amount: int) -> None:
        row = self._co_delta.setdefault(book, {})
        for other in others:
            if other in row:
                row[other] += amount
            else:
                row[other] = amount
                self._co_delta_size += 1
            column = self._co_delta.setdefault(other, {})
            if book in column:
                column[book] += amount
            else:
                column[book] = amount
                self._co_delta_size += 1

    def add_purchase(
        self, customer: Hashable, book_id: int, at_seconds: float, *, becomes_owner: bool | None = None
    ) -> None:
        """One purchase line. ``becomes_owner``: the customer owned no copy before (None: ask the basket)."""
        book = self._book_idx(book_id)
        customer_idx = self._customer_idx(customer)
        self._popularity[book] += decay_term(at_seconds)
        self._popular_max = None
        if becomes_owner is None:
            becomes_owner = book not in self._basket_of(customer_idx)
        if becomes_owner:
            basket = self._editable_basket(customer_idx)
            if book in basket:
                return
            self._co_add(book, basket, 1)
            basket[book] = None
            self._owners[book] += 1
            self._owners_changed(book)
            self._maybe_compact()

    def remove_purchase(self, customer: Hashable, book_id: int, at_seconds: float, *, loses_owner: bool) -> None:
        """Undo one purchase line (a cancelled order). ``loses_owner``: no other live order holds the book."""
        book = self._book_idx(book_id)
        customer_idx = self._customer_idx(customer)
        self._popularity[book] -= decay_term(at_seconds)
        self._popular_max = None
        if loses_owner:
            basket = self._editable_basket(customer_idx)
            if book not in basket:
                return
            del basket[book]
            self._co_add(book, basket, -1)
            self._owners[book] -= 1
            self._owners_changed(book)
            self._maybe_compact()

    # -- compaction ------------------------------------------------------------------

    def _maybe_compact(self) -> None:
        if self._co_delta_size > CO_DELTA_LIMIT:
            self.compact()

    def compact(self) -> None:
        """Merge the incremental overlays into the CSR bases (answers do not change)."""
        if self._co_delta:
            rows, cols, vals = [], [], []
            for row, deltas in self._co_delta.items():
                rows.extend([row] * len(deltas))
                cols.extend(deltas)
                vals.extend(deltas.values())
            delta = sp.csr_matrix(
                (np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))),
                shape=(self._capacity, self._capacity),
            )
            merged = (self._co_base + delta).tocsr()
            merged.eliminate_zeros()
            merged.sort_indices()
            self._co_base = merged
            self._co_delta.clear()
            self._co_delta_size = 0
        if self._basket_overlay:
            count = len(self._customers)
            lengths = np.zeros(count, dtype=np.int64)
            base_count = len(self._basket_indptr) - 1
            lengths[:base_count] = np.diff(self._basket_indptr)
            for customer_idx, basket in self._basket_overlay.items():
                lengths[customer_idx] = len(basket)
            indptr = np.zeros(count + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            indices = np.empty(indptr[-1], dtype=np.int32)
            # Untouched customers keep their base segment, copied in one vectorised step.
            base_lengths = np.diff(self._basket_indptr)
            entry_customer = np.repeat(np.arange(base_count), base_lengths)
            keep = np.ones(base_count, dtype=bool)
            keep[[c for c in self._basket_overlay if c < base_count]] = False
            kept = keep[entry_customer]
            offsets = np.arange(len(entry_customer)) - self._basket_indptr[entry_customer]
            indices[indptr[entry_customer[kept]] + offsets[kept]] = self._basket_indices[kept]
            for customer_idx, basket in self._basket_overlay.items():
                indices[indptr[customer_idx] : indptr[customer_idx + 1]] = list(basket)
            self._basket_indptr, self._basket_indices = indptr, indices
            self._basket_overlay.clear()

    # -- bulk build, export, import ------------------------------------------------------

    @classmethod
    def build(
        cls,
        books: Iterable[BookMeta],
        *,
        customer_codes: np.ndarray,
        customers: Sequence[Hashable],
        book_ids: np.ndarray,
        at_seconds: np.ndarray,
        progress=None,
    ) -> Engine:
        """The model of a purchase history in one vectorised pass (what a rebuild runs).

        ``customer_codes[k]`` indexes ``customers``; line ``k`` is the purchase of
        ``book_ids[k]`` at ``at_seconds[k]``; lines come oldest first (ownership order).
        Only live lines belong here: cancelled ones are simply left out. ``progress`` is
        called with the name of each phase as it starts.
        """
        step = progress or (lambda phase: None)
        step("books")
        engine = cls(books)
        customer_codes = np.asarray(customer_codes, dtype=np.int64)
        book_ids = np.asarray(book_ids, dtype=np.int64)
        unique_books, book_positions = np.unique(book_ids, return_inverse=True)
        book_idx = np.fromiter(
            (engine._book_idx(int(b)) for b in unique_books), dtype=np.int64, count=len(unique_books)
        )
        line_books = book_idx[book_positions] if len(book_ids) else np.zeros(0, dtype=np.int64)
        engine._customers = list(customers)
        engine._customer_index = {customer: i for i, customer in enumerate(engine._customers)}
        size = engine._capacity
        step("popularity")
        if len(line_books):
            engine._popularity += np.bincount(line_books, weights=decay_term(at_seconds), minlength=size)
        step("baskets")
        # Ownership: the first live line of each (customer, book), in purchase order.
        keys = customer_codes * size + line_books
        _, first = np.unique(keys, return_index=True)
        first.sort()
        owner_customers = customer_codes[first]
        owner_books = line_books[first]
        order = np.argsort(owner_customers, kind="stable")
        counts = np.bincount(owner_customers, minlength=len(engine._customers))
        engine._basket_indptr = np.zeros(len(engine._customers) + 1, dtype=np.int64)
        np.cumsum(counts, out=engine._basket_indptr[1:])
        engine._basket_indices = owner_books[order].astype(np.int32)
        step("co-occurrence")
        engine._derive_co_occurrence()
        return engine

    def _derive_co_occurrence(self) -> None:
        """``C = X^T X`` from the baskets: the CSR base, with owners on its diagonal taken out."""
        self.compact()
        size = self._capacity
        ownership = sp.csr_matrix(
            (np.ones(len(self._basket_indices)), self._basket_indices, self._basket_indptr),
            shape=(len(self._basket_indptr) - 1, size),
        )
        co = (ownership.T.tocsr() @ ownership).tocsr()
        self._owners = np.zeros(size, dtype=np.int64)
        self._owners[:] = co.diagonal()
        self._inverse_root = None
        row_of_entry = np.repeat(np.arange(size), np.diff(co.indptr))
        co.data[row_of_entry == co.indices] = 0.0
        co.eliminate_zeros()
        # C is symmetric, so its CSC arrays are a CSR of C itself, and tocsc() sorts the
        # indices on the way (cheaper than sort_indices on the product).
        transposed = co.tocsc()
        self._co_base = sp.csr_matrix((transposed.data, transposed.indices, transposed.indptr), shape=co.shape)
        self._co_delta.clear()
        self._co_delta_size = 0

    def export_state(self) -> tuple[dict[str, np.ndarray], list[Hashable]]:
        """Arrays that :meth:`from_state` turns back into this model, and the customer keys.

        The co-occurrence matrix is not part of it: it is derived from the baskets on load
        (by the code a rebuild runs), which keeps snapshots about ten times smaller.
        """
        self.compact()
        size = len(self._meta)
        arrays = {
            "format": np.array([STATE_FORMAT], dtype=np.int64),
            "book_ids": self._book_ids[:size].copy(),
            "popularity": self._popularity[:size].copy(),
            "basket_indptr": self._basket_indptr.copy(),
            "basket_indices": self._basket_indices.copy(),
        }
        return arrays, list(self._customers)

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], customers: Sequence[Hashable], books: Iterable[BookMeta]
    ) -> Engine:
        if int(arrays["format"][0]) != STATE_FORMAT:
            raise ValueError(f"model state format {int(arrays['format'][0])} is not {STATE_FORMAT}")
        engine = cls(books)
        book_ids = arrays["book_ids"]
        positions = np.fromiter((engine._book_idx(b) for b in book_ids.tolist()), dtype=np.int64, count=len(book_ids))
        # Indices in the state are the exporter's; map them to ours (books may have been added first).
        engine._popularity[positions] = arrays["popularity"]
        engine._customers = list(customers)
        engine._customer_index = {customer: i for i, customer in enumerate(engine._customers)}
        engine._basket_indptr = arrays["basket_indptr"].astype(np.int64)
        engine._basket_indices = positions[arrays["basket_indices"]].astype(np.int32)
        engine._derive_co_occurrence()
        return engine

    # -- scoring -------------------------------------------------------------------------

    def _content_index(self) -> ContentIndex:
        if self._content is None or self._content.size != self._capacity:
            self._content = ContentIndex(self._features, self._capacity)
        return self._content

    def _bought_together(self, books: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``sum_b weights[b] * cosine(b, j)`` over co-purchases, for every book ``j``.

        With ``u = weights / sqrt(owners[books])`` the sum is ``(u^T C)[j] / sqrt(owners[j])``:
        one sparse vector-matrix product over the basket's rows of the CSR base, plus the
        rows of the incremental overlay.
        """
        inverse_root = self._inverse_root_owners()
        scaled = weights * inverse_root[books]
        vector = sp.csr_matrix((scaled, (np.zeros(len(books), dtype=np.int64), books)), shape=(1, self._capacity))
        product = (vector @ self._co_base).tocsr()
        dense = np.zeros(self._capacity)
        dense[product.indices] = product.data
        for position, idx in enumerate(books.tolist()):
            deltas = self._co_delta.get(idx)
            if deltas:
                columns = np.fromiter(deltas.keys(), dtype=np.int64, count=len(deltas))
                counts = np.fromiter(deltas.values(), dtype=np.float64, count=len(deltas))
                np.add.at(dense, columns, scaled[position] * counts)
        return dense * inverse_root

    def _bought_together_contributions(self, books: np.ndarray, weights: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """``weights[b] * cosine(b, j)`` for each basket book ``b`` (rows) and chosen book ``j`` (columns).

        C is symmetric, so the few chosen rows are searched for the basket books.
        """
        inverse_root = self._inverse_root_owners()
        counts = np.zeros((len(books), len(chosen)))
        base = self._co_base
        for column, idx in enumerate(chosen.tolist()):
            start, end = base.indptr[idx], base.indptr[idx + 1]
            if end > start:
                row = base.indices[start:end]  # sorted: the base is kept canonical
                found = np.minimum(np.searchsorted(row, books), end - start - 1)
                hit = row[found] == books
                counts[hit, column] = base.data[start:end][found[hit]]
            deltas = self._co_delta.get(idx)
            if deltas:
                counts[:, column] += [deltas.get(b, 0) for b in books.tolist()]
        return counts * (weights * inverse_root[books])[:, None] * inverse_root[chosen][None, :]

    def _owners_changed(self, book: int) -> None:
        if self._inverse_root is not None and book < len(self._inverse_root):
            owners = float(self._owners[book])
            self._inverse_root[book] = 1.0 / np.sqrt(owners) if owners > 0 else 0.0

    def _inverse_root_owners(self) -> np.ndarray:
        """``1 / sqrt(owners)`` (0 for books nobody owns), cached until ownership changes."""
        if self._inverse_root is None or len(self._inverse_root) != self._capacity:
            owners = self._owners.astype(np.float64)
            self._inverse_root = np.divide(1.0, np.sqrt(owners), out=np.zeros_like(owners), where=owners > 0)
        return self._inverse_root

    def _popular_scores(self) -> np.ndarray:
        """Decayed popularity scaled so the most popular servable book scores 1."""
        if self._popular_max is None:
            live = self._popularity[self._servable]
            self._popular_max = float(live.max()) if live.size else 0.0
        if self._popular_max <= 0.0:
            return np.zeros(self._capacity)
        return np.clip(self._popularity / self._popular_max, 0.0, None)

    def _score(self, basket: np.ndarray, basket_weights: np.ndarray, weights: Weights, exclude: np.ndarray, limit: int):
        """Blend the parts for a weighted basket and rank; returns (ranked, because per pick)."""
        capacity = self._capacity
        content = None
        total = np.zeros(capacity)
        parts = [np.zeros(capacity), np.zeros(capacity), np.zeros(capacity)]
        if len(basket) and weights.bought_together:
            parts[0] = self._bought_together(basket, basket_weights)
        if len(basket) and weights.more_like_this:
            content_weights = basket_weights
            if weights.content_support > 0:
                support = weights.content_support
                content_weights = basket_weights * support / (support + self._owners[basket])
            parts[1], content = self._content_index().weighted_scores(basket, content_weights)
        if weights.popular:
            parts[2] = self._popular_scores()
        for part, weight in zip(parts, weights.as_array(), strict=True):
            if weight:
                total += weight * part
        total[exclude | ~self._servable] = 0.0
        # Summation order differs between an incrementally updated model and a rebuilt
        # one; rounding keeps that noise from reordering equal scores.
        total = np.round(total, 12)
        chosen = self._top(total, limit)
        if not len(chosen):
            return [], []
        weighted = np.vstack([weight * part[chosen] for part, weight in zip(parts, weights.as_array(), strict=True)])
        reasons = np.argmax(weighted, axis=0)
        because = [np.zeros((len(basket), len(chosen))) for _ in range(2)]
        if len(basket) and weights.bought_together and (reasons == 0).any():
            because[0] = self._bought_together_contributions(basket, basket_weights, chosen)
        if content is not None and (reasons == 1).any():
            because[1] = self._content_index().contributions(content, len(basket), chosen)
        ranked = [(int(i), float(total[i]), int(r)) for i, r in zip(chosen, reasons, strict=True)]
        named = [
            self._because(basket, because[reason][:, n]) if reason < 2 else ()
            for n, (_, _, reason) in enumerate(ranked)
        ]
        return ranked, named

    def _top(self, total: np.ndarray, limit: int) -> np.ndarray:
        """Indices of the ``limit`` best positive scores, ties broken by book id."""
        candidates = np.flatnonzero(total > 0.0)
        if not len(candidates) or limit <= 0:
            return np.zeros(0, dtype=np.int64)
        if len(candidates) > limit:
            values = total[candidates]
            kth = np.partition(values, len(candidates) - limit)[len(candidates) - limit]
            above = candidates[values > kth]
            ties = candidates[values == kth]
            ties = ties[np.argsort(self._book_ids[ties], kind="stable")][: limit - len(above)]
            candidates = np.concatenate([above, ties])
        return candidates[np.lexsort((self._book_ids[candidates], -total[candidates]))]

    def _because(self, basket: np.ndarray, contributions: np.ndarray) -> tuple[int, ...]:
        """The basket books that contributed most to one pick, strongest first (ties by book id)."""
        rounded = np.round(contributions, 12)
        order = np.lexsort((self._book_ids[basket], -rounded))[:MAX_BECAUSE]
        return tuple(int(self._book_ids[basket[i]]) for i in order if rounded[i] > 0)

    def _recommendations(self, ranked, because) -> list[Recommendation]:
        result = []
        for (idx, score, reason), why in zip(ranked, because, strict=True):
            meta = self._meta[idx]
            result.append(
                Recommendation(
                    book_id=int(self._book_ids[idx]),
                    title=meta.title if meta else "",
                    score=round(score, 6),
                    reason=REASONS[reason],
                    because=why,
                )
            )
        return result

    def similar(self, book_id: int, *, limit: int = 10, weights: Weights = BLEND) -> list[Recommendation]:
        """Books to show next to ``book_id`` (which may itself be withdrawn)."""
        if not self.knows_book(book_id):
            raise UnknownBook(book_id)
        idx = self._book_index[book_id]
        exclude = np.zeros(self._capacity, dtype=bool)
        exclude[idx] = True
        ranked, because = self._score(np.array([idx]), np.ones(1), weights, exclude, limit)
        return self._recommendations(ranked, because)

    def for_customer(
        self, customer: Hashable, *, limit: int = 10, weights: Weights = BLEND, recency: float = RECENCY
    ) -> list[Recommendation]:
        """Picks for one customer: neighbours of what they own, never what they own."""
        customer_idx = self._customer_index.get(customer)
        owned = np.asarray(self._basket_of(customer_idx) if customer_idx is not None else [], dtype=np.int64)
        basket = owned[-MAX_BASKET:]
        exclude = np.zeros(self._capacity, dtype=bool)
        exclude[owned] = True
        # With ``recency`` < 1 newer purchases count more; the weights sum to 1 so that the
        # parts stay on the scale of one book's similarities, whatever the basket size.
        basket_weights = recency ** np.arange(len(basket))[::-1].astype(np.float64)
        basket_weights /= max(basket_weights.sum(), 1e-12)
        ranked, because = self._score(basket, basket_weights, weights, exclude, limit)
        return self._recommendations(ranked, because)

    def popular(self, *, limit: int = 10, genre: str | None = None) -> list[Recommendation]:
        """The most bought books lately (optionally of one genre)."""
        exclude = np.zeros(self._capacity, dtype=bool)
        if genre:
            exclude[:] = True
            exclude[self._genre_books(genre)] = False
        ranked, because = self._score(np.zeros(0, dtype=np.int64), np.zeros(0), VARIANTS[POPULAR], exclude, limit)
        return self._recommendations(ranked, because)

    def _genre_books(self, genre: str) -> np.ndarray:
        if self._genre_index is None:
            index: dict[str, list[int]] = {}
            for idx, meta in enumerate(self._meta):
                for name in meta.genres if meta else ():
                    index.setdefault(normalize_text(name), []).append(idx)
            self._genre_index = {name: np.asarray(idxs, dtype=np.int64) for name, idxs in index.items()}
        return self._genre_index.get(normalize_text(genre), np.zeros(0, dtype=np.int64))

    # -- inspection (tests, rebuild checks, admin) ----------------------------------------------

    def co_occurrence(self) -> dict[tuple[int, int], int]:
        """Every non-zero pair count by book ids (for comparisons in tests and checks)."""
        merged = self._co_base.copy()
        if self._co_delta:
            rows, cols, vals = [], [], []
            for row, deltas in self._co_delta.items():
                rows.extend([row] * len(deltas))
                cols.extend(deltas)
                vals.extend(deltas.values())
            merged = (merged + sp.csr_matrix((vals, (rows, cols)), shape=merged.shape, dtype=np.float64)).tocsr()
        coo = merged.tocoo()
        return {
            (int(self._book_ids[r]), int(self._book_ids[c])): int(v)
            for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)
            if v
        }

    def owner_counts(self) -> dict[int, int]:
        return {int(self._book_ids[i]): int(self._owners[i]) for i in np.flatnonzero(self._owners[: len(self._meta)])}

    def popularity(self) -> dict[int, float]:
        size = len(self._meta)
        return {int(self._book_ids[i]): float(self._popularity[i]) for i in range(size) if self._popularity[i]}

    def baskets(self) -> dict[Hashable, frozenset[int]]:
        result = {}
        for customer_idx, customer in enumerate(self._customers):
            books = self._basket_of(customer_idx)
            if books:
                result[customer] = frozenset(int(self._book_ids[i]) for i in books)
        return result

    def stats(self) -> dict[str, int]:
        return {
            "books": self.book_count,
            "customers": len(self._customers),
            "owned_pairs": int(self._owners.sum()),
            "co_pairs": int(self._co_base.nnz) + self._co_delta_size,
        }


def ndcg_at(rank: int | None, k: int = 10) -> float:
    """NDCG@k of a single relevant item found at 1-based ``rank`` (None: not found)."""
    return 0.0 if rank is None or rank > k else 1.0 / math.log2(rank + 1)
