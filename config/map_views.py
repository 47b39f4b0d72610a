"""/api/map/ and /api/map/svg/: the service map as this process sees it (its own modules, drawn live)."""

from __future__ import annotations

from pathlib import Path

import graphviz
from django.conf import settings
from django.db import connections
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from config import topology
from config.module_map import service_map, service_map_svg
from messaging.conf import messaging_settings
from web.problems import problem_response


def _database(module: str) -> dict[str, str]:
    """Alias, vendor and database name: no host, user or password (the map is public like /api/)."""
    alias = messaging_settings.alias_for(module)
    name = str(settings.DATABASES[alias].get("NAME") or "")
    vendor = connections[alias].vendor
    return {"alias": alias, "vendor": vendor, "name": Path(name).name if vendor == "sqlite" else name}


def live_map() -> dict:
    """The map for this process's configuration: its modules in one process, the others elsewhere.

    A process knows its own SERVICE, not how the other processes are grouped; each of them
    serves its own map.
    """
    served = tuple(settings.SERVED_MODULES)
    others = tuple(m for m in topology.MODULES if m not in served)
    return service_map(
        [served],
        elsewhere=others,
        transport=settings.EVENT_TRANSPORT,
        topic_prefix=messaging_settings.TOPIC_PREFIX,
        databases={module: _database(module) for module in served},
        this_process=served,
    )


@extend_schema(exclude=True)  # about the deployment, not an operation of a module's API
@api_view(["GET"])
@permission_classes([AllowAny])
def service_map_view(request):
    """The modules this process serves, their databases, API prefixes, topics, and the events between modules."""
    data = live_map()
    data["svg"] = request.build_absolute_uri("/api/map/svg/")
    return Response(data)


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def service_map_svg_view(request):
    """The same map drawn as SVG by Graphviz."""
    try:
        svg = service_map_svg(live_map())
    except graphviz.ExecutableNotFound:
        return problem_response(
            503,
            "The map cannot be drawn: Graphviz's `dot` is not installed on this host. "
            "Run scripts/dev/graphviz.sh ensure (Debian's graphviz package); /api/map/ has the same map as JSON.",
            request=request,
        )
    return HttpResponse(svg, content_type="image/svg+xml")
