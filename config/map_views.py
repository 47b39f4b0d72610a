"""/api/map/ and /api/map/svg/: the service map as this process sees it (its own modules).

Exposure: public, like /api/, and throttled per client address (scope ``service_map``,
``THROTTLE_SERVICE_MAP_RATE``). The map shows no secret (database aliases, vendors and names, no
host, user or password; topics and events are in docs/ anyway), and operators reach it through the
gateway's /map/<module>/ without a staff session (the staff token's cookie is for /admin/ only).
It is drawn once per process: the configuration it shows cannot change while the process runs,
so no request makes the process run Graphviz's ``dot`` again, and the throttle bounds the rest.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import graphviz
from django.conf import settings
from django.db import connections
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from config import topology
from config.module_map import service_map, service_map_svg
from messaging.conf import messaging_settings
from web.problems import problem_response
from web.throttling import SharedRateThrottle

#: The map and its picture as drawn, by the configuration they were drawn for (one entry in a
#: running process; tests that override settings get one each).
_drawn: dict[tuple, dict] = {}
_pictures: dict[tuple, str] = {}
_drawing = threading.Lock()


def _database(module: str) -> dict[str, str]:
    """Alias, vendor and database name: no host, user or password (the map is public like /api/)."""
    alias = messaging_settings.alias_for(module)
    name = str(settings.DATABASES[alias].get("NAME") or "")
    vendor = connections[alias].vendor
    return {"alias": alias, "vendor": vendor, "name": Path(name).name if vendor == "sqlite" else name}


def _configuration() -> tuple:
    """What the map is drawn from: the served modules, the transport, the topic prefix, the databases."""
    served = tuple(settings.SERVED_MODULES)
    databases = tuple((module, tuple(_database(module).items())) for module in served)
    return served, settings.EVENT_TRANSPORT, messaging_settings.TOPIC_PREFIX, databases


def live_map() -> dict:
    """The map for this process's configuration: its modules in one process, the others elsewhere.

    A process knows its own SERVICE, not how the other processes are grouped; each of them
    serves its own map. Built once per configuration; each caller gets its own copy.
    """
    key = _configuration()
    if key not in _drawn:
        served, transport, prefix, databases = key
        _drawn[key] = service_map(
            [served],
            elsewhere=tuple(m for m in topology.MODULES if m not in served),
            transport=transport,
            topic_prefix=prefix,
            databases={module: dict(database) for module, database in databases},
            this_process=served,
        )
    return copy.deepcopy(_drawn[key])


def live_map_svg() -> str:
    """The map drawn by ``dot``, once per configuration (concurrent first requests draw it once).

    A failure (no ``dot`` on the host) is not kept: the next request tries again.
    """
    key = _configuration()
    with _drawing:
        if key not in _pictures:
            _pictures[key] = service_map_svg(live_map())
        return _pictures[key]


class MapThrottle(SharedRateThrottle):
    """Counted per client address, in the store every process of the service shares (web/throttling.py)."""

    def scope_of(self, view) -> str:
        return "service_map"  # function views have no throttle_scope of their own


def _svg_link(request) -> str:
    """Where this map's picture is, as the client reached the map: the gateway's /map/<module>/ says so."""
    prefix = request.headers.get("X-Forwarded-Prefix", "")
    at_gateway = prefix.startswith("/map/") and prefix.removeprefix("/map/").strip("/") in settings.SERVED_MODULES
    return request.build_absolute_uri(f"{prefix.rstrip('/')}/svg/" if at_gateway else "/api/map/svg/")


@extend_schema(exclude=True)  # about the deployment, not an operation of a module's API
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([MapThrottle])
def service_map_view(request):
    """The modules this process serves, their databases, API prefixes, topics, and the events between modules."""
    data = live_map()
    data["svg"] = _svg_link(request)
    return Response(data)


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([MapThrottle])
def service_map_svg_view(request):
    """The same map drawn as SVG by Graphviz."""
    try:
        svg = live_map_svg()
    except graphviz.ExecutableNotFound:
        return problem_response(
            503,
            "The map cannot be drawn: Graphviz's `dot` is not installed on this host. "
            "Run scripts/dev/graphviz.sh ensure (Debian's graphviz package); /api/map/ has the same map as JSON.",
            request=request,
        )
    return HttpResponse(svg, content_type="image/svg+xml")
