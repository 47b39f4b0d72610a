"""Who is calling: customers by their RS256 JWT (verified with the public key alone), staff by session.

Every module authenticates customers here without calling accounts or reading its
database: the token's subject is the customer id.
"""

from __future__ import annotations

import uuid

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.models import TokenUser

CUSTOMER_ROLE = "customer"


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
