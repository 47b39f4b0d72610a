"""RFC 9457 problem details: the one JSON shape of every API error."""

from __future__ import annotations

import logging
import sys
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import APIView, set_rollback

from web.errors import DomainError
from web.limits import too_large_detail

logger = logging.getLogger(__name__)
CONTENT_TYPE = "application/problem+json"
#: Seconds a client is told to wait when a database is unreachable (Retry-After of the 503).
DATABASE_RETRY_AFTER = 5


def _title(status_code: int) -> str:
    if status_code == 413:
        return "Content Too Large"  # RFC 9110's name; Python 3.11's HTTPStatus still has the old one
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _flatten(detail, prefix: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {field, message, code}."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            if isinstance(key, int):  # an item of a list field
                errors.extend(_flatten(value, f"{prefix}[{key}]"))
                continue
            field = key if key != "non_field_errors" else ""
            errors.extend(_flatten(value, f"{prefix}.{field}" if prefix and field else (field or prefix)))
        return errors
    if isinstance(detail, list):
        errors = []
        for index, item in enumerate(detail):
            nested = isinstance(item, (dict, list))
            errors.extend(_flatten(item, f"{prefix}[{index}]" if nested else prefix))
        return errors
    return [{"field": prefix or None, "message": str(detail), "code": getattr(detail, "code", None)}]


def problem(status_code: int, detail: str, *, request=None, type_: str = "about:blank", **extra) -> dict:
    body = {"type": type_, "title": _title(status_code), "status": status_code, "detail": detail}
    if request is not None:
        body["instance"] = request.path
    body.update(extra)
    return body


def problem_response(status_code: int, detail: str, *, request=None, headers=None, **extra) -> Response:
    # No content_type here: the negotiated renderer labels the body (web.renderers), so JSON
    # clients get application/problem+json and a browser a text/html page of the same problem.
    return Response(problem(status_code, detail, request=request, **extra), status=status_code, headers=headers)


def problem_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, DomainError):
        set_rollback()
        return problem_response(
            exc.status, exc.detail, request=request, headers=dict(exc.headers) or None, **exc.problem_members()
        )
    if isinstance(exc, RequestDataTooBig):
        # A chunked body (no Content-Length for web.middleware to refuse) beyond DATA_UPLOAD_MAX_MEMORY_SIZE.
        exc = BodyTooLarge(too_large_detail(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # Keep each message's code (e.g. "unique"), as DRF does for its own validation errors.
        exc = exceptions.ValidationError(as_serializer_error(exc))

    if isinstance(exc, (OperationalError, InterfaceError)):
        set_rollback()
        detail, headers, code = database_problem(exc, request)
        return problem_response(503, detail, request=request, headers=headers, code=code)
    if not isinstance(exc, exceptions.APIException):
        # Never a stack trace or an HTML page from the API, DEBUG or not.
        logger.exception("unhandled error in %s", request.path if request else "API view")
        set_rollback()
        return problem_response(500, "The server failed to handle this request.", request=request)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        fields = sorted({error["field"] for error in errors if error["field"]})
        summary = "Invalid input" + (f" in: {', '.join(fields)}." if fields else ".")
        first = next((error["message"] for error in errors if not error["field"]), None)
        detail = summary if first is None else f"{summary} {first}".strip()
        return problem_response(status.HTTP_400_BAD_REQUEST, detail, request=request, headers=headers, errors=errors)
    detail = exc.detail
    if isinstance(detail, (dict, list)):
        return problem_response(
            exc.status_code, _title(exc.status_code), request=request, headers=headers, errors=_flatten(detail)
        )
    extra = {"code": detail.code} if getattr(detail, "code", None) else {}
    return problem_response(exc.status_code, str(detail), request=request, headers=headers, **extra)


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


def json_problem(request, status_code: int, detail: str, *, headers=None, **extra) -> JsonResponse:
    return JsonResponse(
        problem(status_code, detail, request=request, **extra),
        status=status_code,
        content_type=CONTENT_TYPE,
        headers=headers,
    )


def database_busy(exc: Exception) -> bool:
    """True if the server answered and refused this transaction (a deadlock, a serialization failure).

    False when it cannot serve at all: no SQLSTATE (the connection failed or was lost), a connection
    exception (class 08), or the server shutting down or starting up (57P01, 57P02, 57P03
    ``cannot_connect_now``): that lasts longer than a retry a second later.
    """
    code = getattr(exc.__cause__, "pgcode", None) or ""
    return bool(code) and not code.startswith("08") and code not in ("57P01", "57P02", "57P03")


def database_problem(exc: Exception, request) -> tuple[str, dict[str, str], str]:
    """Detail, headers and code of the 503 a database error is answered with (and a log line saying which).

    Nothing the client did wrong, and nothing half done (the transaction rolled back): a retry later may succeed.
    """
    busy = database_busy(exc)
    logger.warning("database %s in %s: %s", "busy" if busy else "unavailable", request.path if request else "?", exc)
    if busy:
        detail = "The service's database refused this transaction under load; nothing was changed. Retry shortly."
        return detail, {"Retry-After": "1"}, "database_busy"
    detail = "The service cannot reach its database right now; nothing was changed. Retry shortly."
    return detail, {"Retry-After": str(DATABASE_RETRY_AFTER)}, "database_unavailable"


class _ApiNotFound(APIView):
    """Every method on an unknown /api/ path: a 404 problem, negotiated like any API response.

    A DRF view, so it is CSRF-exempt (an unsafe method is a 404, not Django's HTML CSRF page)
    and a browser gets the problem as an HTML page, a client as application/problem+json.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound(f"No API resource at {request.path}.")

    def http_method_not_allowed(self, request, *args, **kwargs):  # every method reaches initial() first
        raise exceptions.NotFound(f"No API resource at {request.path}.")


api_not_found = _ApiNotFound.as_view()


class _Refusal(APIView):
    """Answers a request with the problem of the exception it is given, negotiated like any DRF view's."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # content negotiation: JSON, or the browsable API's HTML
        raise kwargs["refusal"]


_refusal_view = _Refusal.as_view()


def negotiated_problem(request, refusal: Exception):
    """A problem response outside a DRF view (middleware, a wrapped Django view), of the type the client asked for.

    ``refusal`` is any exception the API maps (an ``APIException``, a ``DomainError``): a browser
    gets a readable HTML page with the problem, an API client ``application/problem+json``.
    """
    response = _refusal_view(request, refusal=refusal)
    response.render()
    return response


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a 403 problem under /api/ (a form sent without its token); Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return json_problem(request, 403, f"CSRF verification failed: {reason}")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    """An error no view handled: a problem under /api/, Django's page elsewhere; a lost database is a 503 everywhere.

    A database error raised outside DRF's views (a middleware loading the session or the staff
    user, the admin) reaches Django's handler, not DRF's: it gets the same 503 and Retry-After as
    the API's (Django calls this inside its ``except``, so the exception is at hand).
    """
    error = sys.exc_info()[1]
    if isinstance(error, (OperationalError, InterfaceError)):
        detail, headers, code = database_problem(error, request)
        return json_problem(request, 503, detail, headers=headers, code=code)
    if request.path.startswith("/api/"):
        return json_problem(request, 500, "The server failed to handle this request.")
    from django.views.defaults import server_error

    return server_error(request)
