"""The model learns from events: purchases, duplicates, cancellations, book changes (handlers called directly)."""

from __future__ import annotations

import uuid

import pytest

from recommendations import errors, selectors, store
from recommendations.models import ModelState, Purchase, RecoBook
from tests.recommendations.factories import (
    book_published,
    book_updated,
    handle,
    order_cancelled,
    order_confirmed,
    shelf,
    withdrawn,
)

pytestmark = pytest.mark.django_db(databases=["recommendations"])


def similar(book_id: int, limit: int = 10):
    return selectors.recommendations_similar(book_id=book_id, limit=limit)


def bought_with(book_id: int) -> dict[int, float]:
    return {r.book_id: r.score for r in similar(book_id) if r.reason == "bought_together"}


def picks(customer_id: uuid.UUID, limit: int = 10):
    return selectors.recommendations_for_customer(customer_id=customer_id, limit=limit)


def model_version() -> int:
    return ModelState.objects.using("recommendations").get().version


def test_a_purchase_makes_its_books_bought_together():
    handle(*shelf())
    assert bought_with(5) == {}
    handle(order_confirmed(uuid.uuid4(), 5, 9))

    assert 9 in bought_with(5)
    assert 5 in bought_with(9)
    first = similar(5)[0]
    assert (first.book_id, first.reason, first.because) == (9, "bought_together", (5,))


def test_bought_together_follows_the_purchase_across_orders_of_one_customer():
    handle(*shelf())
    customer = uuid.uuid4()
    handle(order_confirmed(customer, 7), order_confirmed(customer, 10))

    assert 10 in bought_with(7)


def test_a_duplicate_confirmation_changes_nothing():
    handle(*shelf())
    event = order_confirmed(uuid.uuid4(), 5, 9)
    handle(event)
    version, answer = model_version(), similar(5)

    handle(event)

    assert model_version() == version
    assert similar(5) == answer
    assert Purchase.objects.using("recommendations").count() == 2


def test_a_cancellation_removes_the_orders_effect():
    handle(*shelf())
    other = order_confirmed(uuid.uuid4(), 1)
    handle(other)
    before = {"similar": similar(5), "popular": selectors.recommendations_popular(limit=10)}
    event = order_confirmed(uuid.uuid4(), 5, 9)
    handle(event)
    assert 9 in bought_with(5)

    handle(order_cancelled(event))

    assert bought_with(5) == {}
    assert similar(5) == before["similar"]
    assert [r.book_id for r in selectors.recommendations_popular(limit=10)] == [1]
    assert Purchase.objects.using("recommendations").filter(cancelled=True).count() == 2


def test_a_cancelled_order_keeps_books_the_customer_owns_through_another_order():
    handle(*shelf())
    customer = uuid.uuid4()
    first = order_confirmed(customer, 5, 9)
    second = order_confirmed(customer, 5)
    handle(first, second)

    handle(order_cancelled(second))

    assert 9 in bought_with(5)
    assert {r.book_id for r in picks(customer)}.isdisjoint({5, 9})


def test_an_unconfirmed_cancellation_and_a_repeated_cancellation_change_nothing():
    handle(*shelf())
    event = order_confirmed(uuid.uuid4(), 5, 9)
    handle(event, order_cancelled(event))
    version = model_version()

    handle(order_cancelled(event), order_cancelled(order_confirmed(uuid.uuid4(), 1), was_confirmed=False))

    assert model_version() == version


def test_a_cancellation_that_overtakes_its_confirmation_wins():
    handle(*shelf())
    event = order_confirmed(uuid.uuid4(), 5, 9)

    handle(order_cancelled(event), event)

    assert bought_with(5) == {}
    assert not Purchase.objects.using("recommendations").filter(cancelled=False).exists()


def test_a_new_book_without_sales_gets_content_neighbours():
    handle(*shelf())
    handle(order_confirmed(uuid.uuid4(), 9, 10))
    handle(book_published(11, "The Silmarillion", authors=("J.R.R. Tolkien",), genres=("fantasy",)))

    answer = similar(11, limit=4)

    assert {r.book_id for r in answer} == {1, 2, 3, 4}
    assert {r.reason for r in answer} == {"more_like_this"}
    assert all(r.because == (11,) for r in answer)


def test_series_neighbours_come_first_for_a_series_book():
    handle(*shelf())

    assert [r.book_id for r in similar(2, limit=2)] == [1, 3]


def test_a_new_customer_gets_popular_books():
    handle(*shelf())
    for book_id, buyers in ((7, 3), (5, 2), (9, 1)):
        for _ in range(buyers):
            handle(order_confirmed(uuid.uuid4(), book_id))

    answer = picks(uuid.uuid4())

    assert [r.book_id for r in answer] == [7, 5, 9]
    assert {r.reason for r in answer} == {"popular"}
    assert all(r.because == () for r in answer)


def test_a_customer_never_gets_what_they_own_and_hears_why():
    handle(*shelf())
    reader = uuid.uuid4()
    handle(order_confirmed(uuid.uuid4(), 1, 2, 3), order_confirmed(reader, 1, 2))

    answer = picks(reader)

    assert {1, 2}.isdisjoint(r.book_id for r in answer)
    assert answer[0].book_id == 3
    assert answer[0].reason == "bought_together"
    assert set(answer[0].because) == {1, 2}


def test_a_withdrawn_book_disappears_from_every_answer_at_once():
    handle(*shelf())
    reader = uuid.uuid4()
    handle(order_confirmed(uuid.uuid4(), 1, 2, 3), order_confirmed(reader, 1))
    assert 3 in {r.book_id for r in similar(1)}
    assert 3 in {r.book_id for r in picks(reader)}
    assert 3 in {r.book_id for r in selectors.recommendations_popular(limit=10)}

    handle(withdrawn(3))

    assert 3 not in {r.book_id for r in similar(1, limit=50)}
    assert 3 not in {r.book_id for r in picks(reader, limit=50)}
    assert 3 not in {r.book_id for r in selectors.recommendations_popular(limit=50)}
    # Its own page may still show what to read instead.
    assert similar(3)


def test_a_book_update_that_we_do_not_use_does_not_touch_the_model():
    handle(*shelf())
    version = model_version()

    handle(book_updated(5, "Dune", authors=("Frank Herbert",), genres=("science-fiction",), price="1.00"))
    assert model_version() == version

    handle(book_updated(5, "Dune", authors=("Frank Herbert",), genres=("science-fiction",), active=False))
    assert model_version() == version + 1
    assert not RecoBook.objects.using("recommendations").get(pk=5).active


def test_a_withdrawal_before_publication_leaves_an_unknown_book():
    handle(withdrawn(42))

    with pytest.raises(errors.UnknownBook):
        similar(42)


def test_popular_per_genre():
    handle(*shelf())
    handle(order_confirmed(uuid.uuid4(), 9, 5), order_confirmed(uuid.uuid4(), 10), order_confirmed(uuid.uuid4(), 10))

    answer = selectors.recommendations_popular(limit=10, genre="Cookbooks")

    assert [r.book_id for r in answer] == [10, 9]
    assert selectors.recommendations_popular(limit=10, genre="poetry") == []


def test_another_process_sees_changes_through_the_version_counter():
    handle(*shelf())
    assert bought_with(5) == {}
    cached = store.loaded_version()

    # Written as another process would: rows only, this process's cache untouched.
    handle(order_confirmed(uuid.uuid4(), 5, 9))

    assert store.loaded_version() == cached
    assert 9 in bought_with(5)
    assert store.loaded_version()[1] == model_version()
