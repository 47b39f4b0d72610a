"""Each module's OpenAPI schema documents the errors its operations give, as problem details."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(databases=["default"])

MODULES = ("accounts", "catalog", "orders", "recommendations")
METHODS = {"get", "post", "put", "patch", "delete"}


def schema_of(module: str) -> dict:
    response = APIClient().get(f"/api/{module}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


@pytest.mark.parametrize("module", MODULES)
def test_every_operation_documents_its_problem_responses(module):
    schema = schema_of(module)
    assert "Problem" in schema["components"]["schemas"]
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        expected = {"400", "401", "405", "429", "503"}
        if "{" in path:
            expected.add("404")
        if method in {"post", "put", "patch"}:
            expected |= {"409", "413", "415", "422"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for code, response in responses.items():
            if int(code) >= 400:
                content = response["content"]
                assert list(content) == ["application/problem+json"], (method, path, code)
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize("module", MODULES)
def test_429_and_503_document_retry_after_and_405_allow(module):
    for path, method, operation in operations(schema_of(module)):
        responses = operation["responses"]
        for code in ("429", "503"):
            header = responses[code]["headers"]["Retry-After"]
            assert header["required"] and header["schema"] == {"type": "integer", "minimum": 1}, (method, path, code)
        assert "Allow" in responses["405"]["headers"], (method, path)


@pytest.mark.parametrize("module", MODULES)
def test_request_bodies_are_documented_as_json(module):
    for path, method, operation in operations(schema_of(module)):
        if "requestBody" in operation:
            assert list(operation["requestBody"]["content"]) == ["application/json"], (method, path)


def test_public_reads_say_that_signing_in_is_optional():
    for path, method, operation in operations(schema_of("catalog")):
        anonymous = {} in operation.get("security", [])
        assert anonymous == (method == "get" and "stock" not in path), (method, path)


def test_a_book_schema_matches_what_customers_receive():
    book = schema_of("catalog")["components"]["schemas"]["Book"]
    assert "format" not in book["properties"]["cover_url"]  # "" when there is no cover
    assert not {"goodreads_book_id", "on_hand", "reserved", "withdrawn_at"} & set(book["required"])


def test_page_parameters_document_their_bounds():
    parameters = {p["name"]: p["schema"] for p in schema_of("orders")["paths"]["/api/orders/"]["get"]["parameters"]}
    assert parameters["offset"] == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    assert parameters["limit"]["minimum"] == 1
    author = next(
        p for p in schema_of("catalog")["paths"]["/api/catalog/books/"]["get"]["parameters"] if p["name"] == "author"
    )
    assert author["schema"]["items"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


@pytest.mark.django_db(databases=["default", "catalog"])
def test_a_parameter_whose_type_refuses_an_empty_value_says_that_empty_means_its_default():
    books = {p["name"]: p for p in schema_of("catalog")["paths"]["/api/catalog/books/"]["get"]["parameters"]}
    assert books["ordering"]["allowEmptyValue"] and books["page_size"]["allowEmptyValue"]
    assert books["language"]["allowEmptyValue"] and books["author"]["allowEmptyValue"]  # lists of patterns, numbers
    assert "allowEmptyValue" not in books["search"]  # free text takes "" anyway
    for query in ("?ordering=", "?page_size=", "?status=", "?year_min=", "?in_stock=", "?language=", "?author="):
        assert APIClient().get(f"/api/catalog/books/{query}").status_code == 200, query
