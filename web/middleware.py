"""Request limits enforced before any view runs, and headers every response of a kind carries."""

from __future__ import annotations

from django.conf import settings

from web.limits import too_large_detail
from web.problems import BodyTooLarge, negotiated_problem


class RequestBodyLimitMiddleware:
    """A body declared larger than ``REQUEST_BODY_MAX_BYTES`` is a 413 before it is read.

    The same number is the gateway's ``client_max_body_size`` and Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, so a chunked body without a Content-Length is stopped by
    Django while it reads (``RequestDataTooBig``, mapped to the same 413 in web.problems).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.REQUEST_BODY_MAX_BYTES
        if length > limit:
            # Problem JSON for an API client, a readable page for a browser (an admin form, say).
            return negotiated_problem(request, BodyTooLarge(too_large_detail(limit)))
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Every HTML page (admin, browsable API, Swagger UI) says where its scripts, styles and frames may come from.

    ``CONTENT_SECURITY_POLICY`` (empty: none). The default allows scripts from this origin only, no
    inline script: the admin and the browsable API have none, and Swagger UI loads its initializer
    as a file of its own (``SpectacularSwaggerSplitView``). Inline styles stay allowed (the admin's
    and Swagger UI's widgets set them). JSON answers are not documents a browser renders: none.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
