"""Is every released event version still readable by its consumers? The contracts against their lock.

docs/contracts.lock.json is the snapshot of the released schemas: per event type and version, its
Kafka key (the aggregate field) and the JSON Schema a consumer of that version validates against.
``python manage.py check_contracts`` (a step of scripts/test.sh) compares the code with it.

What breaks a consumer of an existing version, in a shop whose services are deployed one at a
time (old consumers read new events, new consumers read events already in topics, outboxes and
dead letters):

- a field removed or renamed: consumers of the version still read it;
- a field whose type or constraints changed: one side sends what the other refuses;
- a new required field: events already published lack it;
- a field that became required, or stopped being required;
- a new optional field, when the version forbids unknown fields (every ``messaging.Event`` does,
  ``extra="forbid"``): consumers that run the old code park every new event as a dead letter;
- a changed key: one aggregate's events would spread over partitions and lose their order;
- a released version that disappears while the lock still lists it.

Titles and descriptions are not part of the contract: editing a docstring changes nothing here.
The fix is always the same: leave the released version as it is and publish the change as a new
version (a new class with the next ``event_version``), both published until every consumer moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.contracts import contracts
from messaging.events import Event

LOCK = Path(__file__).resolve().parents[1] / "docs" / "contracts.lock.json"
LOCK_FORMAT = 1
_NOT_CONTRACT = ("title", "description", "examples")


@dataclass(frozen=True)
class Finding:
    event: str  # "catalog.StockReserved v1"
    field: str  # "lines[].quantity", "" for the event as a whole
    message: str  # the sentence for the operator
    breaking: bool = True


def _strip(schema: Any) -> Any:
    """The schema without what is documentation only (title, description), keys sorted."""
    if isinstance(schema, dict):
        out = {}
        for key, value in sorted(schema.items()):
            if key in _NOT_CONTRACT:
                continue
            if key in ("properties", "$defs"):
                out[key] = {name: _strip(sub) for name, sub in sorted(value.items())}
            else:
                out[key] = _strip(value)
        return out
    if isinstance(schema, list):
        return [_strip(item) for item in schema]
    return schema


def event_schema(event_class: type[Event]) -> dict[str, Any]:
    """What a consumer of this version accepts (pydantic's validation schema), documentation removed."""
    return _strip(event_class.model_json_schema(mode="validation"))


def snapshot() -> dict[str, Any]:
    """The lock file's content for the contracts in the code."""
    events: dict[str, dict[str, Any]] = {}
    for cls in contracts():
        events.setdefault(cls.event_type, {})[str(cls.event_version)] = {
            "key": cls.aggregate_field,
            "schema": event_schema(cls),
        }
    return {
        "about": "Released event schemas; `python manage.py check_contracts` compares the code with them.",
        "format": LOCK_FORMAT,
        "events": events,
    }


def snapshot_json(data: dict[str, Any] | None = None) -> str:
    return json.dumps(snapshot() if data is None else data, indent=2, sort_keys=False) + "\n"


def read_lock(path: Path = LOCK) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if data.get("format") != LOCK_FORMAT:
        raise ValueError(f"{path} has format {data.get('format')!r}; this code reads format {LOCK_FORMAT}")
    return data


def _deref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with every $ref replaced by its definition, for comparing by value."""
    if isinstance(schema, dict):
        schema = _deref(schema, defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _short(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


class _Comparison:
    def __init__(self, event: str, old_defs: dict, new_defs: dict) -> None:
        self.event = event
        self.version = event.rsplit(" v", 1)[1]
        self.old_defs, self.new_defs = old_defs, new_defs
        self.findings: list[Finding] = []

    def add(self, field: str, what: str) -> None:
        self.findings.append(Finding(self.event, field, f"{self.event}: {what}"))

    def compare(self, path: str, old: dict, new: dict) -> None:
        old, new = _deref(old, self.old_defs), _deref(new, self.new_defs)
        if "properties" in old or "properties" in new:
            self._compare_object(path, old, new)
            rest_old = {k: v for k, v in old.items() if k not in ("properties", "required")}
            rest_new = {k: v for k, v in new.items() if k not in ("properties", "required")}
        elif old.get("type") == "array" and new.get("type") == "array" and "items" in old and "items" in new:
            self.compare(f"{path}[]", old["items"], new["items"])
            rest_old = {k: v for k, v in old.items() if k != "items"}
            rest_new = {k: v for k, v in new.items() if k != "items"}
        else:
            rest_old, rest_new = old, new
        rest_old, rest_new = _inline(rest_old, self.old_defs), _inline(rest_new, self.new_defs)
        if rest_old != rest_new:
            where = f"field `{path}`" if path else "the payload"
            self.add(path, f"{where} changed its type or constraints from {_short(rest_old)} to {_short(rest_new)}")

    def _compare_object(self, path: str, old: dict, new: dict) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        closed = old.get("additionalProperties") is False
        for name in old_props:
            field = f"{path}.{name}" if path else name
            if name not in new_props:
                self.add(field, f"field `{field}` was removed or renamed; consumers of v{self.version} still read it")
                continue
            if name in new_req and name not in old_req:
                self.add(field, f"field `{field}` became required; events already published may lack it")
            elif name in old_req and name not in new_req:
                self.add(field, f"field `{field}` is no longer required; consumers of v{self.version} expect it")
            self.compare(field, old_props[name], new_props[name])
        for name in new_props:
            if name in old_props:
                continue
            field = f"{path}.{name}" if path else name
            if name in new_req:
                self.add(field, f"new required field `{field}`; events already published lack it")
            elif closed:
                self.add(
                    field,
                    f"new field `{field}`; consumers of v{self.version} forbid unknown fields "
                    "and would park every new event as a dead letter",
                )


def _advice(event_type: str, version: int) -> str:
    return (
        f"Leave {event_type} v{version} as it was released and publish the change as {event_type} "
        f"v{version + 1} (a new contract class with event_version = {version + 1}), publishing both "
        "until every consumer has moved."
    )


def compare(locked: dict[str, Any], current: dict[str, Any]) -> list[Finding]:
    """What changed between the lock and the code: breaking changes, and versions not locked yet."""
    findings: list[Finding] = []
    old_events, new_events = locked.get("events", {}), current.get("events", {})
    for event_type, versions in old_events.items():
        for version, old in versions.items():
            label = f"{event_type} v{version}"
            new = new_events.get(event_type, {}).get(version)
            if new is None:
                findings.append(
                    Finding(
                        label,
                        "",
                        f"{label} was released and is gone from the code; services still running a "
                        "handler of it would stop receiving it. Publish it again until every consumer has "
                        "moved to another version, then retire it: "
                        f"`python manage.py check_contracts --retire {event_type}:{version}`.",
                    )
                )
                continue
            comparison = _Comparison(label, old["schema"].get("$defs", {}), new["schema"].get("$defs", {}))
            if old["key"] != new["key"]:
                comparison.add(
                    "",
                    f"its key changed from `{old['key']}` to `{new['key']}`; one aggregate's events "
                    "would no longer share a partition and keep their order",
                )
            comparison.compare("", old["schema"], new["schema"])
            advice = _advice(event_type, int(version))
            findings += [Finding(f.event, f.field, f"{f.message}. {advice}") for f in comparison.findings]
    for event_type, versions in new_events.items():
        for version in versions:
            if version not in old_events.get(event_type, {}):
                label = f"{event_type} v{version}"
                findings.append(
                    Finding(
                        label,
                        "",
                        f"{label} is new: record it in docs/contracts.lock.json with "
                        "`python manage.py check_contracts --update` (from then on it is released).",
                        breaking=False,
                    )
                )
    return findings


def locked_update(locked: dict[str, Any], current: dict[str, Any], retire: list[str]) -> dict[str, Any]:
    """The lock after recording new versions and retiring the named ones (``type:version``)."""
    events = {t: dict(v) for t, v in locked.get("events", {}).items()}
    for item in retire:
        event_type, _, version = item.partition(":")
        if version not in events.get(event_type, {}):
            raise ValueError(f"{item} is not in the lock: name a released version as <type>:<version>")
        del events[event_type][version]
        if not events[event_type]:
            del events[event_type]
    for event_type, versions in current["events"].items():
        for version, entry in versions.items():
            # New versions are recorded; released ones are compatible by now (the caller checked),
            # so the code's form replaces theirs (e.g. a constraint pydantic now spells differently).
            events.setdefault(event_type, {})[version] = entry
    ordered = {t: dict(sorted(events[t].items(), key=lambda kv: int(kv[0]))) for t in sorted(events)}
    return {**current, "events": ordered}
