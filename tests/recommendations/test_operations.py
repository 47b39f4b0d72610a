"""Operator surfaces: the evaluation command, the admin."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from recommendations import evaluation
from recommendations.management.commands.evaluate_recommendations import DEFAULT_BOOKS
from tests.recommendations.factories import handle, order_confirmed, shelf

needs_goodbooks = pytest.mark.skipif(not DEFAULT_BOOKS.is_file(), reason=f"goodbooks-10k not at {DEFAULT_BOOKS}")


@needs_goodbooks
def test_evaluate_command_prints_the_table_and_the_blend_beats_popularity():
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("evaluate_recommendations", "--customers", "300", "--seed", "7", stdout=stdout, stderr=stderr)

    rows = {
        match[0]: (float(match[1]), float(match[2]))
        for match in re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|", stdout.getvalue(), re.MULTILINE)
    }
    assert set(rows) == {"blend", "bought_together", "more_like_this", "popular", "popular_all_time"}
    assert rows["blend"][0] >= 2 * max(rows["popular"][0], rows["popular_all_time"][0])
    assert "300 held out" in stderr.getvalue()


@needs_goodbooks
def test_the_generated_log_is_reproducible_and_holds_out_one_line_per_customer():
    books = evaluation.load_goodbooks(DEFAULT_BOOKS)
    first = evaluation.generate_purchases(books, customers=50, seed=1)
    second = evaluation.generate_purchases(books, customers=50, seed=1)

    assert first.book_ids.tolist() == second.book_ids.tolist()
    training, held_out = evaluation.split_last_purchase(first)
    assert len(held_out) == 50
    assert len(training) == len(first) - 50


def test_evaluate_command_refuses_a_missing_books_file(tmp_path):
    with pytest.raises(CommandError, match="No books file"):
        call_command("evaluate_recommendations", "--books", str(tmp_path / "nope.csv"))


def test_goodbooks_rows_that_cannot_be_read_are_reported_by_row_number(tmp_path):
    path = tmp_path / "books.csv"
    path.write_text(
        "book_id,authors,title,original_title,language_code,ratings_count\n"
        '1,"Ann Leckie, Someone Else",Ancillary Justice (Imperial Radch #1),,eng,100\n'
        "oops,Nobody,Broken,,eng,5\n",
        encoding="utf-8",
    )
    errors: list[str] = []

    books = evaluation.load_goodbooks(path, errors=errors)

    assert [b.authors for b in books] == [("Ann Leckie", "Someone Else")]
    assert len(errors) == 1 and errors[0].startswith("row 3:")


@pytest.mark.django_db(databases=["recommendations", "default"])
@pytest.mark.parametrize("model", ["recobook", "purchase", "modelstate", "modelchange", "modelsnapshot"])
def test_admin_lists_every_model(client, model):
    handle(*shelf(), order_confirmed(uuid.uuid4(), 1, 2))
    call_command("rebuild_recommendations", stdout=io.StringIO(), stderr=io.StringIO())
    staff = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(staff)

    response = client.get(f"/admin/recommendations/{model}/", {"q": "not-a-number"})

    assert response.status_code == 200
