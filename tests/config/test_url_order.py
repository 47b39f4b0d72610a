"""config/urls.py matches the modules' API patterns first; their schema and docs pages still resolve."""

from __future__ import annotations

from django.conf import settings
from django.urls import resolve


def test_each_modules_schema_and_docs_resolve_after_its_api():
    for module in settings.SERVED_MODULES:
        assert resolve(f"/api/{module}/schema/").url_name == f"{module}-schema"
        assert resolve(f"/api/{module}/docs/").url_name == f"{module}-docs"


def test_an_api_path_resolves_to_its_modules_view():
    assert resolve("/api/catalog/books/7/").view_name == "catalog:book-detail"
    assert resolve("/api/catalog/books/").view_name == "catalog:book-list"
