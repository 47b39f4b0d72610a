"""Rate limits that hold across processes, and a bound on how many password hashes run at once.

**Limits.** Each throttled endpoint counts attempts per *scope* (``sign_in``, ``register`` ...)
and *identity* (the client's address, the email tried, the customer) in fixed windows, in a
store every process of a service shares: Django's ``DatabaseCache`` (the ``throttle`` cache),
whose table lives on the process's ``default`` database (the service's own PostgreSQL database;
one SQLite file in the one-process shop). Per-process memory would let every gunicorn worker
and replica grant the limit again. One attempt is one transaction that serializes on its
counter (a PostgreSQL advisory transaction lock; SQLite's IMMEDIATE transactions take the write
lock at BEGIN), so concurrent attempts in any number of processes are counted exactly. Over the
limit: 429 problem details with ``Retry-After`` (seconds to the end of the window).

**Hashing.** A password check costs about a second of CPU by design, so a flood of sign-ins
would starve every other request. :func:`password_hash_slot` lets at most
``PASSWORD_HASH_CONCURRENCY`` hashes run at once in a process; a request that waits longer than
``PASSWORD_HASH_WAIT_SECONDS`` for a slot gets 503 with ``Retry-After`` instead of queueing.

Settings: ``THROTTLE_ENABLED``, ``THROTTLE_RATES`` (scope -> ``"<count>/<s|min|hour|day>"``, empty
= unlimited), ``THROTTLE_KEY_PREFIX``, ``PASSWORD_HASH_CONCURRENCY``, ``PASSWORD_HASH_WAIT_SECONDS``;
the client's address follows DRF's ``NUM_PROXIES`` (how many proxies append to X-Forwarded-For).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import caches
from django.db import connections, router, transaction
from django.http import JsonResponse
from rest_framework.throttling import BaseThrottle

from web.errors import DomainError
from web.problems import CONTENT_TYPE, problem
from web.rates import parse_rate

CACHE_ALIAS = "throttle"


def _lock(alias: str, key: str) -> None:
    connection = connections[alias]
    if connection.vendor == "postgresql":
        lock_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
    # SQLite: Django opens the transaction with BEGIN IMMEDIATE (config/databases.py), which already
    # holds the database's write lock, so attempts in other processes wait their turn.


_local_lock = threading.Lock()  # for a cache without a database (tests, a single process)


def hit(scope: str, ident: str, *, period: int) -> tuple[int, float]:
    """Count one attempt of ``ident`` in ``scope``: (attempts in this window so far, seconds left in it)."""
    cache = caches[CACHE_ALIAS]
    now = time.time()
    window = int(now // period)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]  # no address or email stored in the clear
    key = f"{settings.THROTTLE_KEY_PREFIX}{scope}:{digest}:{window}"
    model = getattr(cache, "cache_model_class", None)
    if model is None:
        with _local_lock:
            count = (cache.get(key) or 0) + 1
            cache.set(key, count, timeout=period + 1)
    else:
        alias = router.db_for_write(model)
        with transaction.atomic(using=alias):
            _lock(alias, key)
            count = (cache.get(key) or 0) + 1
            cache.set(key, count, timeout=period + 1)
    return count, (window + 1) * period - now


def check(scope: str, ident: str | None) -> float | None:
    """Count an attempt; the seconds to wait if it is over its scope's limit, else None."""
    if not settings.THROTTLE_ENABLED or not ident:
        return None
    parsed = parse_rate(settings.THROTTLE_RATES.get(scope, ""))
    if parsed is None:
        return None
    limit, period = parsed
    count, left = hit(scope, ident, period=period)
    return max(1, math.ceil(left)) if count > limit else None


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the entry of X-Forwarded-For that the nearest trusted proxy wrote."""
    return BaseThrottle().get_ident(request)


class SharedRateThrottle(BaseThrottle):
    """A DRF throttle of one scope over the shared store; subclasses say whom it counts (:meth:`ident`)."""

    scope = ""

    def ident(self, request, view) -> str | None:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        self._wait = check(self.scope, self.ident(request, view))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AddressThrottle(SharedRateThrottle):
    """Counts by client address; ``scope`` is set per view (``throttle_scope``)."""

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, "throttle_scope", "")
        return super().allow_request(request, view)


class EmailThrottle(SharedRateThrottle):
    """Counts by the email a sign-in tries (guessing one account's password from many addresses)."""

    def allow_request(self, request, view) -> bool:
        self.scope = f"{getattr(view, 'throttle_scope', '')}_account"
        return super().allow_request(request, view)

    def ident(self, request, view) -> str | None:
        email = request.data.get("email") if hasattr(request.data, "get") else None
        return email.strip().lower() if isinstance(email, str) and email.strip() else None


class CustomerThrottle(SharedRateThrottle):
    """Counts by the signed-in customer (the token's subject)."""

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, "throttle_scope", "")
        return super().allow_request(request, view)

    def ident(self, request, view) -> str | None:
        token = getattr(request.user, "token", None)
        subject = token.get("sub") if token is not None else None
        return f"customer:{subject}" if subject else None


# --- the password hasher -------------------------------------------------------------------


class PasswordHashingBusy(DomainError):
    """Too many password checks are running in this process: retry shortly (HTTP 503)."""

    status = 503
    code = "busy"
    headers = {"Retry-After": "2"}


_slots: threading.BoundedSemaphore | None = None
_slots_size = 0
_slots_guard = threading.Lock()


def _semaphore() -> threading.BoundedSemaphore | None:
    global _slots, _slots_size
    size = settings.PASSWORD_HASH_CONCURRENCY
    if size <= 0:
        return None
    with _slots_guard:
        if _slots is None or _slots_size != size:
            _slots, _slots_size = threading.BoundedSemaphore(size), size
        return _slots


@contextlib.contextmanager
def password_hash_slot() -> Iterator[None]:
    """Hold one of the process's hashing slots for a password check or hash; raises :class:`PasswordHashingBusy`."""
    slots = _semaphore()
    if slots is None:
        yield
        return
    if not slots.acquire(timeout=settings.PASSWORD_HASH_WAIT_SECONDS):
        raise PasswordHashingBusy("Too many sign-ins are being checked right now; retry in a moment.")
    try:
        yield
    finally:
        slots.release()


# --- Django views (the admin's and the browsable API's login forms) ---------------------------


def _refusal(request, status: int, detail: str, retry_after: int, code: str) -> JsonResponse:
    response = JsonResponse(
        problem(status, detail, request=request, code=code), status=status, content_type=CONTENT_TYPE
    )
    response["Retry-After"] = str(retry_after)
    return response


def throttled_login(view, *, scope: str = "admin_login"):
    """Wrap a staff login view: its POSTs are rate limited (by address and by username) and hash in a slot."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = request.POST.get("username", "").strip().lower()
        for scope_name, ident in ((scope, client_address(request)), (f"{scope}_account", username)):
            wait = check(scope_name, ident)
            if wait is not None:
                return _refusal(request, 429, f"Too many sign-in attempts; retry in {wait} seconds.", wait, "throttled")
        try:
            with password_hash_slot():
                return view(request, *args, **kwargs)
        except PasswordHashingBusy as busy:
            return _refusal(request, 503, busy.detail, int(busy.headers["Retry-After"]), busy.code)

    return wrapped
