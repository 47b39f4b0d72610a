"""The session and CSRF cookies of a service go to its own paths only.

Behind the gateway every service shares one host name, so a cookie with ``Path=/`` reached
every service: accounts' admin session (which can change staff and their permissions) was sent
to catalog, orders and recommendations too. In the services topology a process's cookies are
scoped to the prefixes it serves, ``/admin/<module>/`` and ``/api/<module>/`` for each of its
modules (``COOKIE_PATHS``): the admin and the staff API of one module share a session, no other
service ever receives it.

A cookie has one path, and a grouped process (``accounts,catalog,orders``) serves several
prefixes whose only common prefix, ``/``, is everyone's. So the cookie is sent once per path, the
same name and value under each (browsers keep a cookie per name *and* path): Django writes it
for ``SESSION_COOKIE_PATH`` / ``CSRF_COOKIE_PATH`` (the first of ``COOKIE_PATHS``) and
:class:`CookiePathsMiddleware` repeats it for the others, deletions included.
"""

from __future__ import annotations

from django.conf import settings


class CookiePathsMiddleware:
    """Repeat the session and CSRF cookies (set, renewed or deleted) for every path in ``COOKIE_PATHS``.

    Listed before SessionMiddleware and CsrfViewMiddleware, so that it sees what they set.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        paths = settings.COOKIE_PATHS
        if len(paths) < 2:
            return response
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            morsel = response.cookies.get(name)
            if morsel is None:
                continue
            for path in paths:
                if path == morsel["path"]:
                    continue
                repeated = morsel.copy()
                repeated["path"] = path
                # A SimpleCookie holds one morsel per key; each keeps its own name when written out, so a
                # second key makes a second Set-Cookie header of the same name for another path.
                response.cookies[f"{name} {path}"] = repeated
        return response
