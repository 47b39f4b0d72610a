"""Content negotiation: DRF's choice, remembered for the Accept headers clients keep sending.

Choosing a renderer parses the Accept header and matches it against each renderer, which cost as
much as a tenth of a book's detail request (docs/benchmarks.md), for an answer that depends only on
the header, the format asked for and the view's renderers. The answer is kept per those, for short
headers and a bounded number of them: a client sending ever new headers fills the table, which is
then emptied, and gets DRF's negotiation as before (its errors are never kept).
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

#: Headers longer than this are negotiated every time (browsers send 100-200 characters).
MAX_REMEMBERED_HEADER = 256
#: Remembered answers at most; the table is emptied when full.
MAX_REMEMBERED = 256

_choices: dict[tuple, tuple[int, str]] = {}


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if len(accept) > MAX_REMEMBERED_HEADER:
            return super().select_renderer(request, renderers, format_suffix)
        # Without a query string there is no ?format=, and no need to parse one into request.GET.
        query = request.META.get("QUERY_STRING")
        format = format_suffix or (request.query_params.get(self.settings.URL_FORMAT_OVERRIDE) if query else None)
        key = (accept, format, *((type(renderer), renderer.media_type, renderer.format) for renderer in renderers))
        choice = _choices.get(key)
        if choice is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            if len(_choices) >= MAX_REMEMBERED:
                _choices.clear()
            choice = _choices[key] = (next(i for i, each in enumerate(renderers) if each is renderer), media_type)
        index, media_type = choice
        return renderers[index], media_type
