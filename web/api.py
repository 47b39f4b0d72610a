"""What every module's API shares."""

from __future__ import annotations

from urllib.parse import unquote

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse


def module_root_view(namespace: str, url_names: list[str], *, templates: dict[str, str] | None = None):
    """A browsable index of a module's resources at /api/<module>/.

    ``url_names`` are reversed in ``namespace``; ``templates`` adds URLs that need an id,
    given relative to the module root (``{"similar": "books/{book_id}/similar/"}``).
    """

    @extend_schema(exclude=True)
    @api_view(["GET"])
    @permission_classes([AllowAny])
    def module_root(request, format=None):
        links = {name: reverse(f"{namespace}:{name}", request=request, format=format) for name in url_names}
        # unquote: a template's {placeholders} are for the reader, not percent-encoded
        links.update({name: unquote(request.build_absolute_uri(path)) for name, path in (templates or {}).items()})
        return Response(links)

    module_root.__doc__ = f"The {namespace} module's resources."
    return module_root
