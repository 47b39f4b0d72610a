"""The API's renderers: an error is sent as the type its body is.

A problem body used to be sent with ``Content-Type: application/problem+json`` whatever the
renderer wrote, so a browser (Accept: text/html) got the browsable API's HTML page labelled
as JSON and showed its source. Now the JSON renderer labels its error bodies
``application/problem+json`` and the browsable API sends its HTML page, which shows the same
problem, as ``text/html``.
"""

from __future__ import annotations

from rest_framework import renderers

PROBLEM_CONTENT_TYPE = "application/problem+json"


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400 and isinstance(data, dict) and "status" in data:
            response["Content-Type"] = PROBLEM_CONTENT_TYPE
        return super().render(data, accepted_media_type, renderer_context)

    def get_indent(self, accepted_media_type, renderer_context):
        # An indent is asked for as a parameter of the media type (application/json; indent=4):
        # a type without parameters has none to parse (parsing it was about a microsecond of every answer).
        if accepted_media_type and ";" not in accepted_media_type:
            return renderer_context.get("indent", None)
        return super().get_indent(accepted_media_type, renderer_context)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API, and for an error a readable page with the problem (no forms to retry with)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        html = super().render(data, accepted_media_type, renderer_context)
        # The page embeds the JSON renderer's output, and that renderer labelled the response: relabel.
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = f"{self.media_type}; charset={self.charset}"
        return html

    def show_form_for_method(self, view, method, request, obj):
        if getattr(view, "response", None) is not None and view.response.status_code >= 400:
            return False
        return super().show_form_for_method(view, method, request, obj)
