"""One staff identity for every service's admin: accounts signs a staff token, every other service verifies it.

Staff users live in accounts' (default) database. When one signs in to accounts' admin, accounts
sets a short-lived RS256 token in a cookie scoped to ``/admin/`` (``STAFF_TOKEN_COOKIE``): who the
person is, whether a superuser, and their permissions as ``app_label.codename``. A process that
does not serve accounts verifies that cookie with the public key alone, exactly like customers'
tokens (``aud`` = ``STAFF_TOKEN_AUDIENCE``, ``iss`` = the JWT issuer), and signs in a local shadow
user (unusable password) holding exactly those permissions. Nobody creates a user per service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.models import Permission
from django.db import transaction
from django.http import HttpResponseRedirect

STAFF_TOKEN_TYPE = "staff"
#: Set in the session of a shadow user: when its token expires, so the session ends with it.
SESSION_EXPIRY_KEY = "quire_staff_token_exp"
_REQUIRED = ("exp", "iat", "iss", "aud", "sub", "token_type")


def staff_claims_verify(token: str) -> dict | None:
    """The claims of a valid staff token, or None (bad signature, expired, another audience or issuer)."""
    try:
        claims = jwt.decode(
            token,
            settings.SIMPLE_JWT["VERIFYING_KEY"],
            algorithms=["RS256"],
            audience=settings.STAFF_TOKEN_AUDIENCE,
            issuer=settings.SIMPLE_JWT["ISSUER"],
            options={"require": list(_REQUIRED)},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("token_type") != STAFF_TOKEN_TYPE or not isinstance(claims.get("permissions", []), list):
        return None
    return claims


def _local_permissions(names: list[str]) -> list[Permission]:
    wanted = {tuple(str(name).split(".", 1)) for name in names if "." in str(name)}
    if not wanted:
        return []
    labels = {label for label, _ in wanted}
    return [
        permission
        for permission in Permission.objects.filter(content_type__app_label__in=labels).select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]


def shadow_user_sync(claims: dict):
    """This service's copy of the staff user the token names, holding exactly the token's permissions."""
    user_model = get_user_model()
    with transaction.atomic(using=user_model.objects.db_manager().db):
        user, created = user_model.objects.get_or_create(username=claims["sub"], defaults={"is_staff": True})
        superuser = bool(claims.get("is_superuser"))
        if (
            created
            or user.has_usable_password()
            or not user.is_staff
            or not user.is_active
            or (user.is_superuser != superuser)
        ):
            # A token never makes a local password: the only way in is through accounts.
            user.set_unusable_password()
            user.is_staff, user.is_active, user.is_superuser = True, True, superuser
            user.save()
        permissions = _local_permissions(claims.get("permissions", []))
        if {p.pk for p in permissions} != set(user.user_permissions.values_list("pk", flat=True)):
            user.user_permissions.set(permissions)
    # Django caches permissions on the instance; a fresh object reads the ones just set.
    return user_model.objects.get(pk=user.pk)


class StaffTokenMiddleware:
    """In a process that does not serve accounts: the staff token cookie is the admin's sign-in.

    After Django's AuthenticationMiddleware. A valid token signs in (or keeps in sync) its shadow
    user; the session ends when the token expires, so a withdrawn permission or a removed staff
    user lasts at most STAFF_TOKEN_SECONDS. Admin logout also clears the token.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        claims = None
        token = request.COOKIES.get(settings.STAFF_TOKEN_COOKIE)
        if token and request.path.startswith(settings.STAFF_TOKEN_COOKIE_PATH):
            claims = staff_claims_verify(token)
        expiry = request.session.get(SESSION_EXPIRY_KEY) if hasattr(request, "session") else None
        if claims is not None:
            current = request.user if request.user.is_authenticated else None
            if current is None or current.get_username() != claims["sub"] or expiry is not None:
                user = shadow_user_sync(claims)
                if current is None or current.pk != user.pk:
                    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                request.user = user
                request.session[SESSION_EXPIRY_KEY] = int(claims["exp"])
        elif expiry is not None and (
            expiry <= datetime.now(UTC).timestamp() or request.path.startswith(settings.STAFF_TOKEN_COOKIE_PATH)
        ):
            # The token expired or was cleared (signed out at accounts): so is this session.
            logout(request)
        response = self.get_response(request)
        if _is_admin_logout(request):
            staff_cookie_delete(response)
        return response


def _is_admin_logout(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name == "logout" and "admin" in match.namespaces)


def staff_cookie_delete(response) -> None:
    response.delete_cookie(settings.STAFF_TOKEN_COOKIE, path=settings.STAFF_TOKEN_COOKIE_PATH, samesite="Lax")


def staff_login_redirect(request, *args, **kwargs):
    """A service without accounts has no staff login of its own: sign in at accounts, then come back."""
    next_url = request.GET.get("next") or request.path.removesuffix("login/")
    return HttpResponseRedirect(f"{settings.STAFF_LOGIN_URL}?{urlencode({'next': next_url})}")
