"""The AsyncAPI 3.0 document of Quire's events, generated from the modules' contracts and handlers.

One channel per module's events topic (``quire.<module>.events``); one message per event type and
version, whose payload is the envelope the relay sends (messaging.Envelope) with the
contract's JSON Schema as ``payload``; the record key is the aggregate field; one ``send``
operation per producer and one ``receive`` operation per consuming module and topic.
docs/asyncapi.yaml is its output, kept current by tests/config/test_asyncapi.py.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import yaml

from config import topology
from config.contracts import consumers_of, contracts, subscriptions
from messaging import Envelope
from messaging.events import Event

TOPIC_PREFIX = "quire"  # the default KAFKA_TOPIC_PREFIX; an installation's prefix replaces it
KAFKA_BINDING_VERSION = "0.5.0"


def message_id(event_class: type[Event]) -> str:
    return f"{event_class.event_type.replace('.', '_')}_v{event_class.event_version}"


def channel_id(module: str) -> str:
    return f"{module}Events"


def _payload_schema(event_class: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    """The contract's schema as sent (pydantic's serialization form), shared models in components."""
    schema = event_class.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        if name in schemas and schemas[name] != definition:
            raise ValueError(f"two contracts define different schemas named {name}: give one another name")
        schemas[name] = definition
    return schema


def _envelope(event_class: type[Event], payload_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [envelope_field.name for envelope_field in fields(Envelope)],
        "properties": {
            "event_id": {"type": "string", "format": "uuid", "description": "Unique; consumers skip a repeat."},
            "event_type": {"const": event_class.event_type},
            "event_version": {"const": event_class.event_version},
            "aggregate_id": {
                "type": "string",
                "description": f"The value of payload.{event_class.aggregate_field}; also the record key.",
            },
            "producer": {"const": event_class.producer()},
            "correlation_id": {"type": "string", "description": "The request that caused it ('' if none)."},
            "occurred_at": {"type": "string", "format": "date-time"},
            "payload": {"$ref": payload_ref},
        },
    }


def _operation(action: str, title: str, summary: str, cid: str, classes: list, **extra: Any) -> dict[str, Any]:
    """An operation on channel ``cid``; in AsyncAPI 3.0 its messages are references into that channel's."""
    return {
        "action": action,
        "title": title,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{cid}"},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{message_id(cls)}"} for cls in classes],
        **extra,
    }


def asyncapi_document() -> dict[str, Any]:
    subs = subscriptions()
    events = contracts()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    payloads: dict[str, Any] = {}
    for cls in events:
        mid = message_id(cls)
        payload_name = f"{mid}_payload"
        payloads[payload_name] = _payload_schema(cls, schemas)
        consumers = consumers_of(cls, subs)
        doc = (cls.__doc__ or "").strip()
        messages[mid] = {
            "name": cls.event_type,
            "title": f"{cls.event_type} v{cls.event_version}",
            "summary": doc.splitlines()[0] if doc else cls.event_type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "required": ["event_type", "event_version", "event_id"],
                "properties": {
                    "event_type": {"const": cls.event_type},
                    "event_version": {"const": str(cls.event_version)},
                    "event_id": {"type": "string", "format": "uuid"},
                },
            },
            "payload": _envelope(cls, f"#/components/schemas/{payload_name}"),
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": f"payload.{cls.aggregate_field}: one aggregate's events share a partition",
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "x-quire-version": cls.event_version,
            "x-quire-key": cls.aggregate_field,
            "x-quire-producer": cls.producer(),
            "x-quire-consumers": consumers,
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for module in topology.MODULES:
        published = [cls for cls in events if cls.producer() == module]
        if not published:
            continue
        cid = channel_id(module)
        channels[cid] = {
            "address": f"{TOPIC_PREFIX}.{module}.events",
            "title": f"{module} events",
            "description": f"Every event {module} publishes, keyed by aggregate id.",
            "messages": {message_id(cls): {"$ref": f"#/components/messages/{message_id(cls)}"} for cls in published},
            "bindings": {
                "kafka": {"topic": f"{TOPIC_PREFIX}.{module}.events", "bindingVersion": KAFKA_BINDING_VERSION}
            },
        }
        operations[f"{module}_publishes"] = _operation(
            "send", f"{module} publishes", f"The {module} relay sends its outbox, in commit order.", cid, published
        )
        for consumer in topology.MODULES:
            read = [cls for cls in published if consumer in consumers_of(cls, subs)]
            if not read:
                continue
            handlers = sorted(
                s.handler
                for s in subs
                if s.module == consumer
                and (s.event_type, s.event_version) in {(c.event_type, c.event_version) for c in read}
            )
            operations[f"{consumer}_consumes_{module}"] = _operation(
                "receive",
                f"{consumer} consumes {module} events",
                f"Consumer group {TOPIC_PREFIX}.{consumer}; handlers: {', '.join(handlers)}.",
                cid,
                read,
                bindings={
                    "kafka": {
                        "groupId": {"const": f"{TOPIC_PREFIX}.{consumer}"},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Quire events",
            "version": "1.0.0",
            "description": (
                "Generated by `python manage.py describe_modules --format asyncapi` from the modules' "
                "contracts.py and handlers.py. Every message is a JSON envelope whose `payload` follows "
                "the event's versioned contract; released versions are locked in docs/contracts.lock.json. "
                f"Topic names use the default prefix `{TOPIC_PREFIX}` (KAFKA_TOPIC_PREFIX)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "KAFKA_BOOTSTRAP_SERVERS of the installation",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {**dict(sorted(schemas.items())), **payloads}},
    }


def asyncapi_yaml() -> str:
    header = "# Generated by `python manage.py describe_modules --format asyncapi > docs/asyncapi.yaml`; do not edit.\n"
    return header + yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=110)
