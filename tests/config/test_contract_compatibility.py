"""check_contracts: the code against docs/contracts.lock.json, with breaking changes planted in the code.

A planted change replaces a released contract class in the event registry for one test (as if
someone had edited that module's contracts.py), then runs the real command against the real lock.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid

import pytest
from django.core.management import CommandError, call_command
from pydantic import BaseModel, ConfigDict, Field

from catalog.contracts import BookWithdrawn, StockReserved
from config.compatibility import LOCK
from messaging.events import EVENT_TYPES, Event


def plant(monkeypatch, released: type[Event], variant: type[Event]) -> None:
    """Put ``variant`` where ``released`` was, under its type, version and module."""
    for name in ("event_type", "event_version", "aggregate_field"):
        monkeypatch.setattr(variant, name, getattr(released, name), raising=False)
    monkeypatch.setattr(variant, "__module__", released.__module__)
    monkeypatch.setitem(EVENT_TYPES, (released.event_type, released.event_version), variant)


def check(lock=LOCK, *extra) -> str:
    err = io.StringIO()
    out = io.StringIO()
    try:
        call_command("check_contracts", "--lock", str(lock), *extra, stdout=out, stderr=err)
    except CommandError as error:
        raise CommandError(f"{error}\n{err.getvalue()}") from error
    return out.getvalue() + err.getvalue()


def test_the_code_matches_the_released_contracts():
    output = check()
    assert "contracts compatible with contracts.lock.json" in output
    assert f"{sum(len(v) for v in json.loads(LOCK.read_text())['events'].values())} released event versions" in output


def test_a_removed_field_fails_naming_the_event_the_field_and_the_fix(monkeypatch):
    class WithoutLines(Event):
        order_id: uuid.UUID

    plant(monkeypatch, StockReserved, WithoutLines)
    with pytest.raises(CommandError) as failure:
        check()
    text = str(failure.value)
    assert (
        "catalog.StockReserved v1: field `lines` was removed or renamed; consumers of v1 still read it. "
        "Leave catalog.StockReserved v1 as it was released and publish the change as catalog.StockReserved v2"
    ) in text
    assert "1 change(s) would break consumers" in text


def test_a_renamed_nested_field_is_a_removal_and_a_new_required_field(monkeypatch):
    class Line(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        book_id: int
        qty: int = Field(gt=0)

    class Renamed(Event):
        order_id: uuid.UUID
        lines: list[Line] = Field(min_length=1)

    plant(monkeypatch, StockReserved, Renamed)
    with pytest.raises(CommandError) as failure:
        check()
    text = str(failure.value)
    assert "field `lines[].quantity` was removed or renamed" in text
    assert "new required field `lines[].qty`; events already published lack it" in text


def test_a_changed_type_fails(monkeypatch):
    class StringId(Event):
        book_id: str

    plant(monkeypatch, BookWithdrawn, StringId)
    with pytest.raises(CommandError) as failure:
        check()
    assert (
        'catalog.BookWithdrawn v1: field `book_id` changed its type or constraints from {"type":"integer"} '
        'to {"type":"string"}'
    ) in str(failure.value)


def test_a_new_required_field_fails(monkeypatch):
    class WithReason(Event):
        book_id: int
        reason: str

    plant(monkeypatch, BookWithdrawn, WithReason)
    with pytest.raises(CommandError, match=r"new required field `reason`; events already published lack it"):
        check()


def test_a_new_optional_field_fails_because_consumers_forbid_unknown_fields(monkeypatch):
    class WithNote(Event):
        book_id: int
        note: str = ""

    plant(monkeypatch, BookWithdrawn, WithNote)
    with pytest.raises(CommandError, match=r"new field `note`; consumers of v1 forbid unknown fields"):
        check()


def test_a_tighter_constraint_fails(monkeypatch):
    class Positive(Event):
        book_id: int = Field(gt=0)

    plant(monkeypatch, BookWithdrawn, Positive)
    with pytest.raises(CommandError, match=r"field `book_id` changed its type or constraints"):
        check()


def test_a_changed_key_fails(monkeypatch):
    monkeypatch.setattr(StockReserved, "aggregate_field", "lines")
    with pytest.raises(CommandError, match=r"catalog.StockReserved v1: its key changed from `order_id` to `lines`"):
        check()


def test_documentation_is_not_part_of_the_contract(monkeypatch):
    class Reworded(Event):
        """Said differently."""

        book_id: int = Field(description="the book that left the catalog", title="Book")

    plant(monkeypatch, BookWithdrawn, Reworded)
    assert "contracts compatible" in check()


def test_a_new_version_is_compatible_and_recorded_by_update(monkeypatch, tmp_path):
    class WithdrawnV2(Event):
        book_id: int
        reason: str

    monkeypatch.setattr(WithdrawnV2, "event_type", "catalog.BookWithdrawn")
    monkeypatch.setattr(WithdrawnV2, "event_version", 2)
    monkeypatch.setattr(WithdrawnV2, "aggregate_field", "book_id")
    monkeypatch.setattr(WithdrawnV2, "__module__", "catalog.contracts")
    monkeypatch.setitem(EVENT_TYPES, ("catalog.BookWithdrawn", 2), WithdrawnV2)
    lock = tmp_path / "contracts.lock.json"
    shutil.copy(LOCK, lock)

    with pytest.raises(CommandError) as failure:
        check(lock)
    assert "catalog.BookWithdrawn v2 is new: record it in docs/contracts.lock.json" in str(failure.value)
    assert "BREAKING" not in str(failure.value)

    assert "updated" in check(lock, "--update")
    assert json.loads(lock.read_text())["events"]["catalog.BookWithdrawn"]["2"]["schema"]["required"] == [
        "book_id",
        "reason",
    ]
    assert "contracts compatible" in check(lock)


def test_a_released_version_gone_from_the_code_fails_until_retired(monkeypatch, tmp_path):
    monkeypatch.delitem(EVENT_TYPES, ("orders.OrderPaid", 1))
    lock = tmp_path / "contracts.lock.json"
    shutil.copy(LOCK, lock)

    with pytest.raises(CommandError) as failure:
        check(lock)
    assert "orders.OrderPaid v1 was released and is gone from the code" in str(failure.value)
    assert "check_contracts --retire orders.OrderPaid:1" in str(failure.value)
    with pytest.raises(CommandError, match="would break"):
        check(lock, "--update")  # --update never writes over a breaking change

    check(lock, "--update", "--retire", "orders.OrderPaid:1")
    assert "orders.OrderPaid" not in json.loads(lock.read_text())["events"]
    assert "contracts compatible" in check(lock)
