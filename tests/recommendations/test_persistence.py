"""The model survives restarts, a rebuild equals the incremental model, checkpoints fold the journal."""

from __future__ import annotations

import io
import random
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connections

from recommendations import selectors, services, store
from recommendations.models import ModelChange, ModelSnapshot, ModelState
from tests.recommendations.factories import NOW, handle, order_cancelled, order_confirmed, shelf, withdrawn

pytestmark = pytest.mark.django_db(databases=["recommendations"])


def history(seed: int = 3) -> list[uuid.UUID]:
    """Many customers buying, buying again, cancelling; a withdrawal. Returns the customers."""
    rng = random.Random(seed)
    handle(*shelf())
    customers = [uuid.uuid4() for _ in range(12)]
    at = NOW - timedelta(days=90)
    for round_ in range(40):
        customer = rng.choice(customers)
        event = order_confirmed(customer, *rng.sample(range(1, 11), rng.randint(1, 3)))
        handle(event, at=at)
        if round_ % 7 == 3:
            handle(order_cancelled(event), at=at + timedelta(hours=1))
        at += timedelta(days=2)
    handle(withdrawn(8), at=at)
    return customers


def answers(customers: list[uuid.UUID]) -> dict:
    return {
        "similar": {book_id: selectors.recommendations_similar(book_id=book_id, limit=10) for book_id in range(1, 11)},
        "customers": {c: selectors.recommendations_for_customer(customer_id=c, limit=10) for c in customers},
        "popular": selectors.recommendations_popular(limit=10),
        "genre": selectors.recommendations_popular(limit=10, genre="fantasy"),
    }


def model() -> dict:
    with store.current_engine() as engine:
        return {
            "co": engine.co_occurrence(),
            "owners": engine.owner_counts(),
            "baskets": engine.baskets(),
            "popularity": engine.popularity(),
        }


def assert_same_model(first: dict, second: dict) -> None:
    assert first["co"] == second["co"]
    assert first["owners"] == second["owners"]
    assert first["baskets"] == second["baskets"]
    assert first["popularity"].keys() == second["popularity"].keys()
    for book_id, value in first["popularity"].items():
        assert second["popularity"][book_id] == pytest.approx(value, rel=1e-9)


def test_rebuild_equals_incremental_updates():
    customers = history()
    incremental_model, incremental_answers = model(), answers(customers)
    assert incremental_model["co"], "the history must teach something"

    result = services.model_rebuild()
    store.reset()

    assert result.version == ModelState.objects.using("recommendations").get().version
    assert_same_model(model(), incremental_model)
    assert answers(customers) == incremental_answers


@pytest.mark.postgres
def test_rebuild_equals_incremental_updates_on_postgresql():
    if connections["recommendations"].vendor != "postgresql":
        pytest.skip("set RECOMMENDATIONS_DATABASE_URL to a PostgreSQL database (make test does)")
    customers = history()
    incremental_model, incremental_answers = model(), answers(customers)

    services.model_rebuild()
    store.reset()

    assert_same_model(model(), incremental_model)
    assert answers(customers) == incremental_answers


def test_the_model_survives_a_restart():
    customers = history()
    before_model, before = model(), answers(customers)

    store.reset()  # a new process: nothing in memory, everything from the database

    assert_same_model(model(), before_model)
    assert answers(customers) == before


def test_a_restart_after_a_snapshot_replays_only_the_journal_after_it():
    customers = history()
    services.model_rebuild()
    later = order_confirmed(customers[0], 9, 10)
    handle(later)
    before_model, before = model(), answers(customers)
    snapshot = ModelSnapshot.objects.using("recommendations").get()
    assert set(ModelChange.objects.using("recommendations").values_list("version", flat=True)) == {snapshot.version + 1}

    store.reset()

    assert_same_model(model(), before_model)
    assert answers(customers) == before


def test_a_rebuild_makes_every_process_reload():
    history()
    with store.current_engine():
        pass
    generation, _ = store.loaded_version()

    services.model_rebuild()
    with store.current_engine():
        pass

    assert store.loaded_version()[0] != generation
    assert store.loaded_version()[0] == ModelState.objects.using("recommendations").get().generation


def test_an_up_to_date_process_reads_one_row_per_request(django_assert_num_queries):
    history()
    selectors.recommendations_similar(book_id=1, limit=10)

    with django_assert_num_queries(1, using="recommendations"):
        selectors.recommendations_similar(book_id=1, limit=10)


def test_writers_checkpoint_the_journal_when_it_grows(settings, django_capture_on_commit_callbacks):
    settings.RECOMMENDATIONS_CHECKPOINT_EVERY = 12
    customer = uuid.uuid4()
    with django_capture_on_commit_callbacks(using="recommendations", execute=True):
        handle(*shelf(), order_confirmed(customer, 1, 2))  # 11 versions
    assert not ModelSnapshot.objects.using("recommendations").exists()

    with django_capture_on_commit_callbacks(using="recommendations", execute=True):
        handle(order_confirmed(customer, 3))  # the 12th

    snapshot = ModelSnapshot.objects.using("recommendations").get()
    state = ModelState.objects.using("recommendations").get()
    assert snapshot.version == state.version == state.journal_floor
    assert not ModelChange.objects.using("recommendations").exists()
    before = model()
    store.reset()
    assert_same_model(model(), before)
    assert before["co"][(1, 3)] == before["co"][(2, 3)] == 1


def test_rebuild_command_reports_progress_on_stderr():
    history()
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("rebuild_recommendations", stdout=stdout, stderr=stderr)

    assert "reading purchases:" in stderr.getvalue()
    assert "/s" in stderr.getvalue() and "ETA" in stderr.getvalue()
    assert "Rebuilt the model from" in stdout.getvalue()
    assert ModelSnapshot.objects.using("recommendations").count() == 1


def test_a_version_without_journal_rows_leaves_readers_up_to_date(django_assert_num_queries):
    handle(*shelf())
    handle(order_cancelled(order_confirmed(uuid.uuid4(), 5)))  # remembered as cancelled: a version, no change
    selectors.recommendations_similar(book_id=1, limit=10)

    with django_assert_num_queries(1, using="recommendations"):
        selectors.recommendations_similar(book_id=1, limit=10)


def test_a_process_behind_a_pruned_journal_reloads():
    customers = history()
    with store.current_engine():
        pass
    behind = store._loaded  # this "process" stops here
    handle(order_confirmed(customers[0], 9, 10))
    store.reset()
    assert store.checkpoint() is not None  # another process folds the journal it had
    expected_model, expected = model(), answers(customers)

    store._loaded = behind
    assert_same_model(model(), expected_model)
    assert answers(customers) == expected


def test_a_snapshot_of_another_format_is_replaced_by_a_build_in_memory():
    customers = history()
    services.model_rebuild()
    expected_model, expected = model(), answers(customers)
    snapshot = ModelSnapshot.objects.using("recommendations").get()
    with np.load(io.BytesIO(bytes(snapshot.data))) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["format"] = arrays["format"] + 1
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    ModelSnapshot.objects.using("recommendations").filter(pk=snapshot.pk).update(data=buffer.getvalue())

    store.reset()

    assert_same_model(model(), expected_model)
    assert answers(customers) == expected
