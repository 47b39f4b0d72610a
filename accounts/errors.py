"""accounts' domain errors: one base, each error with its HTTP status and code."""

from __future__ import annotations

from web.errors import DomainError

#: The challenge of every 401 accounts answers: a customer signs in with a bearer token.
BEARER_CHALLENGE = 'Bearer realm="api"'


class AccountsError(DomainError):
    """A rule of accounts refused the request."""


class TokenRefused(AccountsError):
    """A refresh token that cannot buy a new access token (invalid, expired, or its customer is gone)."""

    status = 401
    code = "token_not_valid"
    headers = {"WWW-Authenticate": BEARER_CHALLENGE}
