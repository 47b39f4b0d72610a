"""The envelope every event travels in, whatever the transport."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Envelope:
    """Metadata around an event's payload.

    ``aggregate_id`` is the ordering key: one aggregate's events keep their order.
    """

    event_type: str
    event_version: int
    aggregate_id: str
    producer: str
    payload: dict[str, Any]
    occurred_at: datetime
    correlation_id: str = ""
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    #: W3C trace context of the span that published it ("" without tracing); Kafka carries it in a header.
    traceparent: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as stored in dead letters and sent over Kafka."""
        data = asdict(self)
        data["event_id"] = str(self.event_id)
        data["occurred_at"] = self.occurred_at.isoformat()
        if not self.traceparent:  # tracing off: the record's value and a dead letter stay as they were
            del data["traceparent"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        """Rebuild an envelope from :meth:`to_dict`; raises ``ValueError``/``KeyError`` on bad input."""
        return cls(
            event_id=uuid.UUID(str(data["event_id"])),
            event_type=str(data["event_type"]),
            event_version=int(data["event_version"]),
            aggregate_id=str(data["aggregate_id"]),
            producer=str(data["producer"]),
            correlation_id=str(data.get("correlation_id") or ""),
            traceparent=str(data.get("traceparent") or ""),
            occurred_at=datetime.fromisoformat(str(data["occurred_at"])),
            payload=dict(data["payload"]),
        )
