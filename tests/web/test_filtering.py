"""The API's filter backend (web/filtering.py): django-filter's, skipped when a request filters nothing."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from catalog.api.filters import BookFilter
from catalog.api.views import BookListView
from catalog.models import Book
from web.filtering import FilterBackend


def _filter(query: dict):
    request = Request(APIRequestFactory().get("/api/catalog/books/", query))
    queryset = Book.objects.all()
    return queryset, FilterBackend().filter_queryset(request, queryset, BookListView())


def test_a_request_without_filter_parameters_gets_the_queryset_as_it_was():
    queryset, filtered = _filter({"ordering": "title", "page_size": "5"})
    assert filtered is queryset  # no filter set built, nothing added


def test_a_filter_parameter_still_filters():
    queryset, filtered = _filter({"year_min": "1990"})
    assert filtered is not queryset
    assert "publication_year" in str(filtered.query)


def test_a_bad_filter_value_is_still_a_400_naming_it():
    with pytest.raises(ValidationError) as raised:
        _filter({"year_min": "soon"})
    assert "year_min" in raised.value.detail


def test_a_filter_set_that_does_not_say_so_is_always_built():
    """A filter may read parameters other than its name (a range's _min/_max): only a filter set that declares
    its parameters are its filters' names is skipped."""

    class RangeOnly(BookFilter):
        unfiltered_without_its_parameters = False

    class View(BookListView):
        filterset_class = RangeOnly

    request = Request(APIRequestFactory().get("/api/catalog/books/", {"ordering": "title"}))
    queryset = Book.objects.all()
    assert FilterBackend().filter_queryset(request, queryset, View()) is not queryset
