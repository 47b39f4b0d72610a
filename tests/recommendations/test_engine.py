"""The pure engine (no database): incremental updates, bulk build, snapshots, scoring rules."""

from __future__ import annotations

import random

import pytest

from recommendations import engine as engine_module
from recommendations.engine import (
    EPOCH_SECONDS,
    BookMeta,
    Engine,
    Weights,
    book_features,
    ndcg_at,
    split_series,
)
from recommendations.errors import UnknownBook

DAY = 86_400.0
T0 = EPOCH_SECONDS + 2000 * DAY


def catalogue(count: int = 30) -> list[BookMeta]:
    return [BookMeta(i, f"Book {i}", (f"Author {i % 7}",), (f"genre-{i % 3}",), "eng") for i in range(1, count + 1)]


def random_history(seed: int = 5, lines: int = 400):
    """(customer, book, at, kind) with repeats and cancellations, plus the live lines a rebuild would read."""
    rng = random.Random(seed)
    live: list[tuple[int, int, float]] = []
    events = []
    for step in range(lines):
        customer, book, at = rng.randrange(25), rng.randint(1, 30), T0 + step * 3600.0
        events.append(("add", customer, book, at))
        live.append((customer, book, at))
        if rng.random() < 0.15:
            victim = rng.randrange(len(live))
            events.append(("remove", *live.pop(victim)))
    return events, live


def apply(engine: Engine, events) -> None:
    held: dict[tuple[int, int], int] = {}
    for kind, customer, book, at in events:
        key = (customer, book)
        if kind == "add":
            held[key] = held.get(key, 0) + 1
            engine.add_purchase(customer, book, at, becomes_owner=held[key] == 1)
        else:
            held[key] -= 1
            engine.remove_purchase(customer, book, at, loses_owner=held[key] == 0)


def build(live) -> Engine:
    import numpy as np

    return Engine.build(
        catalogue(),
        customer_codes=np.array([c for c, _, _ in live]),
        customers=list(range(25)),
        book_ids=np.array([b for _, b, _ in live]),
        at_seconds=np.array([t for _, _, t in live]),
    )


def same_model(first: Engine, second: Engine) -> None:
    assert first.co_occurrence() == second.co_occurrence()
    assert first.owner_counts() == second.owner_counts()
    assert first.baskets() == second.baskets()
    assert first.popularity() == pytest.approx(second.popularity(), rel=1e-9)
    for book_id in range(1, 31):
        assert first.similar(book_id) == second.similar(book_id)
    for customer in range(25):
        assert first.for_customer(customer) == second.for_customer(customer)


def test_bulk_build_equals_incremental_updates_with_cancellations():
    events, live = random_history()
    incremental = Engine(catalogue())
    apply(incremental, events)

    same_model(incremental, build(live))


def test_compaction_changes_no_answer(monkeypatch):
    events, _ = random_history(seed=9)
    reference = Engine(catalogue())
    apply(reference, events)
    monkeypatch.setattr(engine_module, "CO_DELTA_LIMIT", 10)
    compacting = Engine(catalogue())

    apply(compacting, events)

    same_model(compacting, reference)


def test_exported_state_loads_back_to_the_same_model():
    events, _ = random_history(seed=11)
    original = Engine(catalogue())
    apply(original, events)

    arrays, customers = original.export_state()
    restored = Engine.from_state(arrays, customers, catalogue())

    same_model(restored, original)
    restored.add_purchase(3, 4, T0 + 9999 * DAY)
    original.add_purchase(3, 4, T0 + 9999 * DAY)
    same_model(restored, original)


def test_a_state_of_another_format_is_refused():
    arrays, customers = Engine(catalogue()).export_state()
    arrays["format"] = arrays["format"] + 1

    with pytest.raises(ValueError, match="format"):
        Engine.from_state(arrays, customers, catalogue())


def test_a_recent_sale_outweighs_two_old_ones():
    engine = Engine(catalogue(3))
    engine.add_purchase("a", 1, T0 - 90 * DAY)
    engine.add_purchase("b", 1, T0 - 90 * DAY)
    engine.add_purchase("c", 2, T0)

    assert [r.book_id for r in engine.popular()] == [2, 1]
    assert engine.popular()[1].score == pytest.approx(2 * 2 ** (-90 / 30), rel=1e-6)


def test_bought_together_is_cosine_over_owners():
    engine = Engine(catalogue(4))
    for customer, books in {"a": (1, 2), "b": (1, 2), "c": (1, 3), "d": (3,), "e": (3,), "f": (3,)}.items():
        for book in books:
            engine.add_purchase(customer, book, T0)

    bought = {r.book_id: r.score for r in engine.similar(1, weights=Weights(1.0, 0.0, 0.0))}

    # owners: 1 -> 3, 2 -> 2, 3 -> 4; together: (1, 2) -> 2, (1, 3) -> 1
    assert bought == {2: pytest.approx(2 / (3 * 2) ** 0.5, abs=1e-6), 3: pytest.approx(1 / (3 * 4) ** 0.5, abs=1e-6)}


def test_an_unknown_book_is_refused_and_unpublished_purchases_are_not_shown():
    engine = Engine(catalogue(2))
    engine.add_purchase("a", 1, T0)
    engine.add_purchase("a", 99, T0)  # bought, but catalog never told us about it

    with pytest.raises(UnknownBook):
        engine.similar(99)
    assert 99 not in [r.book_id for r in engine.similar(1)]
    assert 99 not in [r.book_id for r in engine.popular()]


def test_for_customer_names_the_purchases_behind_each_pick():
    engine = Engine(catalogue(10))
    for customer, books in {"x": (1, 2, 5), "y": (3, 5), "me": (1, 2, 3)}.items():
        for book in books:
            engine.add_purchase(customer, book, T0)

    first = engine.for_customer("me", weights=Weights(1.0, 0.0, 0.0))[0]

    assert first.book_id == 5
    assert set(first.because) == {1, 2, 3}


def test_series_and_features():
    assert split_series("Catching Fire (The Hunger Games, #2)") == ("The Hunger Games", "Catching Fire")
    assert split_series("Dune Messiah (Dune #2)") == ("Dune", "Dune Messiah")
    assert split_series("1984") == ("", "1984")
    features = book_features(
        BookMeta(1, "Émile (Rousseau Works, #1-2)", ("J.-J. Rousseau", "Allan Bloom"), ("Philosophy",), "fre")
    )
    assert features == {
        "a:j.-j. rousseau": 1.0,
        "a:allan bloom": 0.5,
        "g:philosophy": 1.0,
        "s:rousseau works": 1.5,
        "t:emile": 0.3,
        "l:fre": 0.3,
    }


def test_ndcg_of_one_relevant_item():
    assert ndcg_at(1) == 1.0
    assert ndcg_at(3) == pytest.approx(0.5)
    assert ndcg_at(11) == ndcg_at(None) == 0.0
