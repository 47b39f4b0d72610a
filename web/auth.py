"""Who is calling: customers by their RS256 JWT (verified with the public key alone), staff by session.

Every module authenticates customers here without calling accounts or reading its
database: the token's subject is the customer id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty
from drf_spectacular.authentication import SessionScheme as SpectacularSessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTStatelessUserScheme
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.models import TokenUser

CUSTOMER_ROLE = "customer"

#: module -> "is this customer refused?", answered from the module's own database.
_customer_gates: dict[str, Callable[[uuid.UUID], bool]] = {}


def customer_gate_register(module: str, refused: Callable[[uuid.UUID], bool]) -> None:
    """Let ``module`` refuse the tokens of customers it has learned are deactivated or deleted.

    A token stays valid until it expires; a module that has seen ``accounts.CustomerDeactivated``
    (or ``CustomerDeleted``) refuses it at once, without calling accounts.
    """
    _customer_gates[module] = refused


class CustomerJWTAuthentication(JWTStatelessUserAuthentication):
    """simplejwt's stateless check, then the serving module's own word on the customer.

    The module is the one whose view answers (``orders.api.views`` -> ``orders``), so in one
    process every module still asks its own copy, exactly as it would as a service.
    """

    def __init__(self, *args, **kwargs):
        # simplejwt's looks the user model up for every request's instance; the stateless check
        # makes a TokenUser from the token and never reads a user, so it has no model to find.
        authentication.BaseAuthentication.__init__(self, *args, **kwargs)

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not is_customer(result[0]):
            return result
        view = (getattr(request, "parser_context", None) or {}).get("view")
        refused = _customer_gates.get(type(view).__module__.partition(".")[0]) if view is not None else None
        try:
            customer_id = uuid.UUID(str(result[1]["sub"]))
        except (KeyError, ValueError):
            return result  # customer_id_of refuses it with its own sentence
        if refused is not None and refused(customer_id):
            raise AuthenticationFailed("This customer account is deactivated or deleted.", code="customer_inactive")
        return result


class CustomerJWTScheme(SimpleJWTStatelessUserScheme):
    """The OpenAPI security scheme stays simplejwt's ``jwtAuth`` (Bearer JWT): only the check grew."""

    target_class = "web.auth.CustomerJWTAuthentication"


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication, without looking up a user that cannot be there.

    Django's user is looked up lazily, from the session the session cookie names: a request without
    that cookie, whose user nothing has set or read yet, can only be anonymous, and the lookup was a
    fifth of DRF's work on an anonymous read (docs/benchmarks.md). A user set by a middleware (the
    staff token) or already read is taken as DRF takes it.
    """

    def authenticate(self, request):
        django_request = request._request
        user = django_request.__dict__.get("user")
        if (
            isinstance(user, SimpleLazyObject)
            and user._wrapped is empty
            and settings.SESSION_COOKIE_NAME not in django_request.COOKIES
        ):
            return None
        return super().authenticate(request)


class SessionScheme(SpectacularSessionScheme):
    """The OpenAPI security scheme stays drf-spectacular's ``cookieAuth``."""

    target_class = "web.auth.SessionAuthentication"


def is_customer(user) -> bool:
    return isinstance(user, TokenUser) and user.token.get("role") == CUSTOMER_ROLE


def customer_id_of(request) -> uuid.UUID:
    """The signed-in customer's id, from the verified token."""
    if not is_customer(request.user):
        raise NotAuthenticated("Sign in as a customer (Authorization: Bearer <access token>).")
    try:
        return uuid.UUID(str(request.user.token["sub"]))
    except (KeyError, ValueError) as error:
        raise NotAuthenticated("The token names no customer.") from error


class IsCustomer(BasePermission):
    message = "Sign in as a customer (Authorization: Bearer <access token>)."

    def has_permission(self, request, view) -> bool:
        return is_customer(request.user)


class IsStaff(BasePermission):
    """Operators: Django staff users, signed in through the admin or the browsable API."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and not isinstance(user, TokenUser) and user.is_authenticated and user.is_staff)


class IsStaffOrReadOnly(IsStaff):
    def has_permission(self, request, view) -> bool:
        return request.method in ("GET", "HEAD", "OPTIONS") or super().has_permission(request, view)
