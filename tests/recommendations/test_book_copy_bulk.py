"""recommendations' bulk book copy: the effect of one by one, one model version, a journal row per change."""

from __future__ import annotations

import pytest

from recommendations import services
from recommendations.models import ModelChange, RecoBook

pytestmark = pytest.mark.django_db(databases=["recommendations"])


def copy(book_id: int, title: str, **fields) -> services.BookCopy:
    values = {"authors": ["Frank Herbert"], "genres": ["sf"], "language": "en", "active": True}
    return services.BookCopy(book_id=book_id, title=title, **{**values, **fields})


def test_bulk_upsert_creates_changes_and_skips_what_did_not_change():
    services.book_upsert(**copy(1, "Dune").__dict__)
    services.book_upsert(**copy(2, "Emma").__dict__)
    journal_before = ModelChange.objects.count()
    version_before = max(ModelChange.objects.values_list("version", flat=True))

    changed = services.books_upsert(
        books=[copy(1, "Dune"), copy(2, "Emma", active=False), copy(3, "Ulysses"), copy(3, "Ulysses (2nd)")]
    )

    assert changed == 2  # book 1 unchanged; 2 changed; 3 new (its later copy wins)
    assert dict(RecoBook.objects.values_list("book_id", "title")) == {1: "Dune", 2: "Emma", 3: "Ulysses (2nd)"}
    assert RecoBook.objects.get(book_id=2).active is False
    new_rows = ModelChange.objects.order_by("id")[journal_before:]
    assert sorted(row.book_id for row in new_rows) == [2, 3]
    assert len({row.version for row in new_rows}) == 1  # one transaction, one version
    assert new_rows[0].version > version_before


def test_bulk_upsert_of_nothing_new_takes_no_version():
    services.book_upsert(**copy(1, "Dune").__dict__)
    journal_before = ModelChange.objects.count()

    assert services.books_upsert(books=[copy(1, "Dune")]) == 0
    assert ModelChange.objects.count() == journal_before
