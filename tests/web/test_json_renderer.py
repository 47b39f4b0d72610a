"""web/renderers.py's JSON renderer indents exactly as DRF's: as the Accept header's media type or the view asks."""

from __future__ import annotations

import pytest
from rest_framework import renderers

from web.renderers import JSONRenderer

DATA = {"title": "Dune", "authors": [{"id": 1, "name": "Frank Herbert"}]}


@pytest.mark.parametrize(
    ("media_type", "context"),
    [
        ("application/json", {}),
        ("application/json", {"indent": 2}),
        ("application/json; indent=4", {}),
        ("application/json; indent=4", {"indent": 2}),
        ("application/json;indent=0", {}),
        ("application/json; indent=nine", {}),
        ("application/json; charset=utf-8", {}),
        (None, {}),
        (None, {"indent": 3}),
    ],
)
def test_the_same_bytes_as_drfs_renderer(media_type, context):
    ours = JSONRenderer().render(DATA, media_type, dict(context))
    assert ours == renderers.JSONRenderer().render(DATA, media_type, dict(context))


def test_an_indent_asked_in_the_media_type_is_honoured():
    assert JSONRenderer().render(DATA, "application/json; indent=4", {}).startswith(b'{\n    "title"')
    assert b"\n" not in JSONRenderer().render(DATA, "application/json", {})
