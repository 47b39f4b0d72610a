"""Typed, versioned event payloads declared in each module's ``contracts.py``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from messaging.envelope import Envelope

#: (event_type, version) -> payload class, filled as contracts are imported.
EVENT_TYPES: dict[tuple[str, int], type[Event]] = {}


class InvalidEvent(ValueError):
    """A payload that does not match its declared contract."""

    def __init__(self, event_type: str, version: int, error: ValidationError | str):
        if isinstance(error, ValidationError):
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'payload'}: {item['msg']}" for item in error.errors()
            )
        else:
            problems = error
        super().__init__(f"{event_type} v{version} payload is invalid: {problems}")
        self.event_type = event_type
        self.version = version


class Event(BaseModel):
    """Base of every event contract.

    Subclasses set ``event_type`` (``"<module>.<FactInPastTense>"``), ``event_version``
    and ``aggregate_field`` (the payload field whose value orders this aggregate's
    events), and declare the payload as typed fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1
    aggregate_field: ClassVar[str] = ""

    _envelope: Envelope | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.event_type:
            return
        module, _, name = cls.event_type.partition(".")
        if not module or not name:
            raise TypeError(f"{cls.__name__}.event_type must look like '<module>.<Event>', not {cls.event_type!r}")
        if cls.aggregate_field not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.aggregate_field must name one of its fields")
        key = (cls.event_type, cls.event_version)
        if key in EVENT_TYPES and EVENT_TYPES[key].__qualname__ != cls.__qualname__:
            raise TypeError(f"{cls.event_type} v{cls.event_version} is declared twice")
        EVENT_TYPES[key] = cls

    @classmethod
    def producer(cls) -> str:
        """The module that publishes this event (the prefix of its type)."""
        return cls.event_type.partition(".")[0]

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))

    @property
    def envelope(self) -> Envelope | None:
        """The envelope this event arrived in (set when consumed), else None."""
        return self._envelope

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload, validated again so that what is stored always parses back."""
        payload = self.model_dump(mode="json")
        type(self).from_payload(payload)
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any], envelope: Envelope | None = None) -> Event:
        """Validate a payload against this contract; raises :class:`InvalidEvent`."""
        try:
            event = cls.model_validate(payload)
        except ValidationError as error:
            raise InvalidEvent(cls.event_type, cls.event_version, error) from error
        event._envelope = envelope
        return event
