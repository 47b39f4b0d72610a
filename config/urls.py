"""URLs of this process: /api/<module>/ for every served module, identical in every topology."""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from config.health import LiveView, ReadyView
from config.map_views import service_map_svg_view, service_map_view
from config.metrics import metrics_view
from web.problems import api_not_found
from web.staff import staff_login_redirect
from web.throttling import throttled_login

handler404 = "web.problems.handler404"
handler500 = "web.problems.handler500"


def module_urlpatterns(module: str) -> list:
    return [path(f"api/{module}/", include(f"{module}.api.urls"))]


def module_docs(module: str) -> list:
    schema = SpectacularAPIView.as_view(
        urlconf=SimpleNamespace(urlpatterns=module_urlpatterns(module)),
        custom_settings={
            "TITLE": f"Quire {module} API",
            "DESCRIPTION": f"The {module} module of the Quire bookshop, under `/api/{module}/`. "
            "Every error is an RFC 9457 problem details body (`application/problem+json`).",
        },
    )
    return [
        path(f"api/{module}/schema/", schema, name=f"{module}-schema"),
        # Its initializer as a script of its own: the pages' Content-Security-Policy allows no inline script.
        path(
            f"api/{module}/docs/",
            SpectacularSwaggerSplitView.as_view(url_name=f"{module}-schema"),
            name=f"{module}-docs",
        ),
    ]


@extend_schema(exclude=True)  # an index of the modules' own schemas, not an operation of one
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    """The modules this process serves, with their API documentation."""
    return Response(
        {
            module: {
                "api": request.build_absolute_uri(f"/api/{module}/"),
                "schema": reverse(f"{module}-schema", request=request),
                "docs": reverse(f"{module}-docs", request=request),
            }
            for module in settings.SERVED_MODULES
        }
    )


# One admin per process. A service mounts it under /admin/<module>/ for each module it serves, so
# that the gateway routes /admin/<module>/ by prefix exactly as it routes /api/<module>/, and an
# admin address stays the same when a module moves between processes. The first mount is the
# site's own instance namespace, so every link the admin draws points there; the other mounts
# are the same pages under a second instance namespace (reached, never reversed).
ADMIN_PREFIXES = ["admin/"] if settings.SERVICE == "all" else [f"admin/{module}/" for module in settings.SERVED_MODULES]
ADMIN_PREFIX = ADMIN_PREFIXES[0]
admin.site.site_header = "Quire administration" + ("" if settings.SERVICE == "all" else f" — {settings.SERVICE}")
admin_mounts = [path(ADMIN_PREFIX, admin.site.urls)] + [
    path(prefix, (admin.site.get_urls(), "admin", f"admin-{prefix.split('/')[1]}")) for prefix in ADMIN_PREFIXES[1:]
]
# Staff sign in once, at accounts (web/staff.py): a process without accounts sends its login page there.
admin_login = throttled_login(admin.site.login) if "accounts" in settings.SERVED_MODULES else staff_login_redirect
# The browsable API's sign-in. A service's session cookie is sent to its own /api/<module>/ and
# /admin/<module>/ paths only (web/cookies.py), so its sign-in lives under its first API prefix;
# /api-auth/, which the gateway routes to a service by ?next=, redirects there.
API_AUTH_PREFIX = "api-auth/" if settings.SERVICE == "all" else f"api/{settings.SERVED_MODULES[0]}/auth/"
api_auth_redirect = (
    []
    if API_AUTH_PREFIX == "api-auth/"
    else [
        re_path(r"^api-auth/(?P<rest>.*)$", RedirectView.as_view(url=f"/{API_AUTH_PREFIX}%(rest)s", query_string=True))
    ]
)
# The modules' APIs first: a request's path is matched against the patterns in order, and API
# requests (the traffic) then skip the ten sign-in, admin, health and map patterns (about half a
# microsecond each; resolving a book's detail 18.5 -> 13 us), and each module's API comes before its
# schema and docs pages, which its own patterns do not match. A split service's sign-in pages under
# api/<module>/auth/ are not its API's: they match further down.
urlpatterns = [pattern for _module in settings.SERVED_MODULES for pattern in module_urlpatterns(_module)]
for _module in settings.SERVED_MODULES:
    urlpatterns += module_docs(_module)
urlpatterns += [
    # Staff sign-ins are rate limited and hash in a bounded slot (web/throttling.py), like customers'.
    *(path(prefix + "login/", admin_login) for prefix in ADMIN_PREFIXES),
    path(API_AUTH_PREFIX + "login/", throttled_login(LoginView.as_view(template_name="rest_framework/login.html"))),
    path(API_AUTH_PREFIX, include("rest_framework.urls")),
    *api_auth_redirect,
    *admin_mounts,
    path("api/", api_root, name="api-root"),
    path("api/map/", service_map_view, name="service-map"),
    path("api/map/svg/", service_map_svg_view, name="service-map-svg"),
    path("health/live/", LiveView.as_view(), name="health-live"),
    path("health/ready/", ReadyView.as_view(), name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    re_path(r"^api/", api_not_found),
]
