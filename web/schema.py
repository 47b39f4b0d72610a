"""The OpenAPI schema of every module: each operation's error responses, as problem details.

drf-spectacular documents the success response of an operation; the errors a client must
handle (and a fuzzer checks against) are the same shape everywhere, so they are added here
once, by what the operation takes: every operation can answer 400 (bad parameters), 401 (a
bad token), 405 (another method of its path that is not served), 429 (throttled) and 503
(its database, or a password-hashing slot, not available now); one that checks permissions
403; one with a path parameter 404; one that writes 409 and 422 (domain conflicts and rules);
one with a body 413 (too large) and 415 (an unsupported media type). 429 and 503 carry
``Retry-After``, 405 ``Allow``. An optional query parameter may be sent empty (documented as
``allowEmptyValue`` where its type would refuse ""): it then means its default.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import SAFE_METHODS, AllowAny

from web.auth import IsStaffOrReadOnly
from web.renderers import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; more members may follow (e.g. the lines a conflict is about).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "nullable": True},
        "code": {"type": "string", "description": "A stable word a client may branch on."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "nullable": True, "description": "e.g. lines[1].quantity"},
                    "message": {"type": "string"},
                    "code": {"type": "string", "nullable": True},
                },
            },
        },
    },
}

DESCRIPTIONS = {
    400: "Invalid parameters or body: `errors` names each field at fault.",
    401: "Not signed in, or the token is invalid or expired.",
    402: "The payment was declined.",
    403: "Signed in, but not allowed to do this.",
    404: "No such resource (or not yours).",
    405: "This path does not take the method used: `Allow` lists the ones it takes.",
    409: "Conflicts with the resource's current state.",
    413: "The request body is larger than the shop accepts.",
    415: "The body's media type is not one the API reads.",
    422: "Understood, but a rule of the shop refuses it.",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: "Not available right now (the service's database, or every password-hashing slot, is busy or away); "
    "nothing was changed: retry after `Retry-After` seconds.",
}
HEADERS = {
    405: {"Allow": {"schema": {"type": "string"}, "description": "The methods this path takes."}},
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
            "description": "Seconds until the limit's window ends.",
        }
    },
    503: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
            "description": "Seconds to wait before retrying.",
        }
    },
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
WITH_BODY = {"POST", "PUT", "PATCH"}


class AutoSchema(openapi.AutoSchema):
    def _error_codes(self) -> list[int]:
        codes = [400, 401, 405, 429, 503]
        if not self._allows_anyone():
            codes.append(403)
        if "{" in self.path:
            codes.append(404)
        if self.method in WRITES:
            codes += [409, 422]
        if self.method in WITH_BODY:
            codes += [413, 415]
        return sorted(codes)

    def _allows_anyone(self) -> bool:
        # No authenticator either, so no CSRF refusal (403) from the session authentication.
        permissions = self.view.get_permissions()
        return all(isinstance(p, AllowAny) for p in permissions) and not self.view.get_authenticators()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        component = ResolvedComponent(
            name="Problem", type=ResolvedComponent.SCHEMA, object="web.schema.Problem", schema=PROBLEM_SCHEMA
        )
        self.registry.register_on_missing(component)
        documented = {int(code) for code in responses if str(code).isdigit() and int(code) >= 400}
        for code in sorted(documented | set(self._error_codes())):
            existing = responses.get(str(code)) or {}
            description = existing.get("description") or DESCRIPTIONS.get(code, "Problem details (RFC 9457)")
            if description == "Problem details (RFC 9457)":
                description = DESCRIPTIONS.get(code, description)
            headers = {**existing.get("headers", {}), **HEADERS.get(code, {})}
            responses[str(code)] = {
                **({"headers": headers} if headers else {}),
                "description": description,
                "content": {PROBLEM_CONTENT_TYPE: {"schema": component.ref}},
            }
        return responses

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            # Every query parameter of Quire reads an empty value as absent, as a form's empty field sends
            # it (the browsable API's filters): `?ordering=` or `?page_size=` is the default. Said where the
            # schema alone would refuse "" (a number, a choice); free text takes it anyway.
            items = schema.get("items", {}) if schema.get("type") == "array" else {}
            refuses_empty = (
                schema.get("type") in ("integer", "number", "boolean")
                or "enum" in schema
                # A comma-separated list of numbers or of patterned text (`?language=`: no language asked for).
                or items.get("type") in ("integer", "number")
                or "pattern" in items
            )
            if parameter.get("in") == "query" and not parameter.get("required") and refuses_empty:
                parameter["allowEmptyValue"] = True
        return parameters

    def get_auth(self):
        auths = super().get_auth()
        # Reads that staff and anonymous callers share: signing in is optional.
        anonymous_read = self.method in SAFE_METHODS and any(
            isinstance(permission, IsStaffOrReadOnly) for permission in self.view.get_permissions()
        )
        if anonymous_read and {} not in auths:
            auths.append({})
        return auths
