"""docs/asyncapi.yaml: an AsyncAPI 3.0 document valid against the official AsyncAPI 3.0.0 JSON Schema,
whose every reference resolves and whose schemas accept the records the relay really sends (a real
customer registration's outbox row)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from rest_framework.test import APIClient

from accounts.contracts import CustomerRegistered
from config.asyncapi import asyncapi_document, asyncapi_yaml, message_id
from config.contracts import contracts, subscriptions
from messaging.models import OutboxMessage

DOCUMENT_URI = "urn:quire:asyncapi"
#: The AsyncAPI Initiative's schema of the 3.0.0 specification, vendored (see its README.md for the source).
SCHEMA = Path(__file__).parent / "asyncapi_schema" / "3.0.0.json"
SCHEMA_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    data = SCHEMA.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, f"{SCHEMA} is not the vendored @asyncapi/specs file"
    schema = json.loads(data)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def errors_of(validator: Draft7Validator, document: dict) -> list[str]:
    found = validator.iter_errors(document)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}" for error in found]


def test_the_document_is_valid_against_the_official_asyncapi_3_schema(asyncapi_validator):
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())

    assert errors_of(asyncapi_validator, document) == []


@pytest.mark.parametrize(
    "plant",
    [
        lambda d: d["operations"]["orders_publishes"].update(action="publish"),  # 2.x's verb, not 3.0's
        lambda d: d["channels"]["ordersEvents"].update(address=42),
        lambda d: d.update(info={"title": "Quire events"}),  # no version
        lambda d: d.update(topics={}),  # not a field of the document
    ],
)
def test_the_schema_check_catches_a_document_that_is_not_asyncapi_3(asyncapi_validator, plant):
    document = copy.deepcopy(asyncapi_document())
    plant(document)

    assert errors_of(asyncapi_validator, document)


def refs(node, found=None):
    found = [] if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)
    return found


def pointer(document, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_document_is_asyncapi_3_and_every_reference_resolves():
    document = yaml.safe_load(asyncapi_yaml())

    assert document["asyncapi"] == "3.0.0"
    assert document == asyncapi_document()
    for ref in refs(document):
        pointer(document, ref)  # raises KeyError on a dangling reference
    for operation in document["operations"].values():
        assert operation["action"] in ("send", "receive")
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")  # 3.0: an operation's messages are its channel's
    for schema in document["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


def test_every_event_version_topic_key_producer_and_consumer_is_in_the_document():
    document = asyncapi_document()
    subs = subscriptions()
    for cls in contracts():
        message = document["components"]["messages"][message_id(cls)]
        assert message["name"] == cls.event_type and message["x-quire-version"] == cls.event_version
        assert message["x-quire-key"] == cls.aggregate_field
        channel = document["channels"][f"{cls.producer()}Events"]
        assert channel["address"] == f"quire.{cls.producer()}.events"
        sent = document["operations"][f"{cls.producer()}_publishes"]["messages"]
        assert any(m["$ref"].endswith(f"/{message_id(cls)}") for m in sent)
        consumers = sorted(
            {s.module for s in subs if (s.event_type, s.event_version) == (cls.event_type, cls.event_version)}
        )
        assert message["x-quire-consumers"] == consumers
        for consumer in consumers:
            received = document["operations"][f"{consumer}_consumes_{cls.producer()}"]["messages"]
            assert any(m["$ref"].endswith(f"/{message_id(cls)}") for m in received)


@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_a_real_outbox_record_validates_against_its_message_schema():
    response = APIClient().post(
        "/api/accounts/register/",
        {"email": "ada-asyncapi@example.com", "password": "a-long-passphrase-for-tests", "name": "Ada"},
        format="json",
    )
    assert response.status_code == 202
    row = OutboxMessage.objects.using("accounts").filter(event_type=CustomerRegistered.event_type).latest("id")
    record = row.to_envelope().to_dict()  # the value the Kafka relay sends

    document = asyncapi_document()
    registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT7))
    schema = {"$ref": f"{DOCUMENT_URI}#/components/messages/{message_id(CustomerRegistered)}/payload"}
    validator = Draft7Validator(schema, registry=registry)

    assert list(validator.iter_errors(record)) == []
    record["payload"]["email"] = 42
    assert [error.message for error in validator.iter_errors(record)] == ["42 is not of type 'string'"]
