"""web/negotiation.py: the renderer DRF would choose, remembered per Accept header; errors as DRF's."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.settings import api_settings

from web import negotiation
from web.negotiation import ContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "text/html",
    "application/problem+json, application/json;q=0.5",
]


def request_with(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(RequestFactory().get(f"/api/catalog/books/{query}", **headers))


def renderers():
    return [renderer() for renderer in api_settings.DEFAULT_RENDERER_CLASSES]


@pytest.fixture(autouse=True)
def _forget():
    negotiation._choices.clear()
    yield
    negotiation._choices.clear()


@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_same_answer_as_drf_the_first_time_and_after(accept, query):
    """The renderer (this request's own instance) and media type DRF chooses, or DRF's refusal."""
    expected_list = renderers()
    try:
        renderer, media_type = DefaultContentNegotiation().select_renderer(request_with(accept, query), expected_list)
        expected = (expected_list.index(renderer), media_type)
    except NotAcceptable:
        expected = NotAcceptable
    for _ in range(2):  # negotiated, then remembered
        offered = renderers()
        if expected is NotAcceptable:
            with pytest.raises(NotAcceptable):
                ContentNegotiation().select_renderer(request_with(accept, query), offered)
            continue
        chosen, chosen_media_type = ContentNegotiation().select_renderer(request_with(accept, query), offered)
        assert (offered.index(chosen), chosen_media_type) == expected
        assert chosen is offered[expected[0]]


def test_a_header_nothing_can_answer_is_refused_every_time_and_never_remembered():
    for _ in range(2):
        with pytest.raises(NotAcceptable):
            ContentNegotiation().select_renderer(request_with("image/png"), renderers())
    assert negotiation._choices == {}


def test_long_or_ever_new_headers_keep_the_table_bounded():
    long_header = "application/json, " + "x/y;q=0.1, " * 40
    ContentNegotiation().select_renderer(request_with(long_header), renderers())
    assert negotiation._choices == {}  # longer than MAX_REMEMBERED_HEADER: negotiated, not kept
    for number in range(negotiation.MAX_REMEMBERED * 2):
        ContentNegotiation().select_renderer(request_with(f"application/json; v={number}"), renderers())
        assert len(negotiation._choices) <= negotiation.MAX_REMEMBERED
