"""accounts issues the staff token that every other service's admin accepts (see web/staff.py).

Staff users are Django users of accounts' default database. On a successful admin sign-in, and
again once half of a token's life has passed, accounts sets a fresh RS256 token in the staff cookie,
so a permission given or withdrawn here reaches the other admins within STAFF_TOKEN_SECONDS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings

from web.staff import STAFF_TOKEN_TYPE, staff_claims_verify, staff_cookie_delete


def staff_token_for(user, *, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "token_type": STAFF_TOKEN_TYPE,
        "sub": user.get_username(),
        "is_superuser": bool(user.is_superuser),
        # app_label.codename, groups included. A superuser has every one: listing them would only make
        # the cookie outgrow a proxy's header buffer.
        "permissions": [] if user.is_superuser else sorted(user.get_all_permissions()),
        "iss": settings.SIMPLE_JWT["ISSUER"],
        "aud": settings.STAFF_TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.STAFF_TOKEN_SECONDS)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="RS256")


def _needs_fresh_token(request, user) -> bool:
    claims = staff_claims_verify(request.COOKIES.get(settings.STAFF_TOKEN_COOKIE, ""))
    if claims is None or claims["sub"] != user.get_username():
        return True
    return claims["exp"] - datetime.now(UTC).timestamp() < settings.STAFF_TOKEN_SECONDS / 2


class StaffTokenIssueMiddleware:
    """In the process that serves accounts: a signed-in staff user on an admin page carries a fresh token."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(settings.STAFF_TOKEN_COOKIE_PATH):
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active and user.is_staff:
            if _needs_fresh_token(request, user):
                response.set_cookie(
                    settings.STAFF_TOKEN_COOKIE,
                    staff_token_for(user),
                    max_age=settings.STAFF_TOKEN_SECONDS,
                    path=settings.STAFF_TOKEN_COOKIE_PATH,
                    secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True,
                    samesite="Lax",
                )
        elif request.COOKIES.get(settings.STAFF_TOKEN_COOKIE):
            staff_cookie_delete(response)  # signed out (or never in): no token outlives the session
        return response
