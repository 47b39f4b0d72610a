"""Rate limits that hold across processes, and a bound on how many password hashes run at once.

**Limits.** Each throttled endpoint counts attempts per *scope* (``sign_in``, ``register`` ...)
and *identity* (the client's address, the customer, an account tried from one address) in fixed
windows, in a store every process of a service shares: Django's ``DatabaseCache`` (the
``throttle`` cache), whose table lives on the process's ``default`` database (the service's own
PostgreSQL database; one SQLite file in the one-process shop). Per-process memory would let every
gunicorn worker and replica grant the limit again. One attempt is one transaction that serializes
on its counter (a PostgreSQL advisory transaction lock; SQLite's IMMEDIATE transactions take the
write lock at BEGIN), so concurrent attempts in any number of processes are counted exactly. Over
the limit: 429 problem details with ``Retry-After`` (seconds to the end of the window), and
nothing written: a flood refused at its limit adds no rows, so it cannot fill the table and have
other clients' counters culled.

**Failures, not attempts, per account.** A limit on every attempt at one account would let anyone
lock its owner out by trying wrong passwords. The per-account limits of sign-in and the staff
logins count *failed* attempts of one account *from one client address* (:class:`AccountFailureThrottle`,
:func:`failures_record`): an attacker exhausts their own allowance, never the owner's, and the
per-address limit on every attempt keeps bounding the hashing a client can cause.

**Hashing.** A password check costs about a second of CPU by design, so a flood of sign-ins
would starve every other request. :func:`password_hash_slot` lets at most
``PASSWORD_HASH_CONCURRENCY`` hashes run at once in a process; a request that waits longer than
``PASSWORD_HASH_WAIT_SECONDS`` for a slot gets 503 with ``Retry-After`` instead of queueing.

Settings: ``THROTTLE_ENABLED``, ``THROTTLE_RATES`` (scope -> ``"<count>/<s|min|hour|day>"``, empty
= unlimited), ``THROTTLE_KEY_PREFIX``, ``PASSWORD_HASH_CONCURRENCY``, ``PASSWORD_HASH_WAIT_SECONDS``;
the client's address follows DRF's ``NUM_PROXIES`` (how many proxies append to X-Forwarded-For),
an IPv6 address counted by its /64 (what one subscriber is usually given).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import math
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import caches
from django.db import connections, router, transaction
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from web.errors import DomainError
from web.problems import negotiated_problem
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


@contextlib.contextmanager
def _counter_locked(cache, key: str) -> Iterator[None]:
    model = getattr(cache, "cache_model_class", None)
    if model is None:
        with _local_lock:
            yield
        return
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        _lock(alias, key)
        yield


def _counter(scope: str, ident: str, *, limit: int, period: int, count: bool) -> float | None:
    """The seconds to wait if ``ident`` has used its ``limit`` in this window, else None.

    With ``count``, an attempt under the limit is counted; one at or over it writes nothing.
    """
    cache = caches[CACHE_ALIAS]
    now = time.time()
    window = int(now // period)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]  # no address or email stored in the clear
    key = f"{settings.THROTTLE_KEY_PREFIX}{scope}:{digest}:{window}"
    wait = max(1, math.ceil((window + 1) * period - now))
    if not count:
        return wait if (cache.get(key) or 0) >= limit else None
    with _counter_locked(cache, key):
        used = cache.get(key) or 0
        if used >= limit:
            return wait
        cache.set(key, used + 1, timeout=period + 1)
    return None


def _limit_of(scope: str, ident: str | None) -> tuple[int, int] | None:
    if not settings.THROTTLE_ENABLED or not ident:
        return None
    return parse_rate(settings.THROTTLE_RATES.get(scope, ""))


def check(scope: str, ident: str | None) -> float | None:
    """Count an attempt; the seconds to wait if it is over its scope's limit (then it is not counted), else None."""
    parsed = _limit_of(scope, ident)
    if parsed is None:
        return None
    limit, period = parsed
    return _counter(scope, ident, limit=limit, period=period, count=True)


def exceeded(scope: str, ident: str | None) -> float | None:
    """Like :func:`check`, without counting: for limits whose count is of failures, recorded afterwards."""
    parsed = _limit_of(scope, ident)
    if parsed is None:
        return None
    limit, period = parsed
    return _counter(scope, ident, limit=limit, period=period, count=False)


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the entry of X-Forwarded-For that the nearest trusted proxy wrote.

    An IPv6 address stands for its /64: one subscriber usually holds a whole /64 and could
    otherwise take a fresh allowance with each of its 2**64 addresses.
    """
    ident = BaseThrottle().get_ident(request)
    try:
        address = ipaddress.ip_address(ident.strip())
    except ValueError:
        return ident
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SharedRateThrottle(BaseThrottle):
    """A DRF throttle over the shared store, of the view's ``throttle_scope``; subclasses say whom it counts.

    With ``failures_only`` it counts nothing itself: it refuses once the identity's failures
    reached the limit, and the view calls :func:`failures_record` after a failure (a wrong
    password, a declined card). A success is never counted.
    """

    scope_suffix = ""
    failures_only = False

    def scope_of(self, view) -> str:
        return getattr(view, "throttle_scope", "") + self.scope_suffix

    def ident(self, request, view) -> str | None:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        self.scope = self.scope_of(view)
        ident = self.ident(request, view)
        self._wait = exceeded(self.scope, ident) if self.failures_only else check(self.scope, ident)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AddressThrottle(SharedRateThrottle):
    """Counts by client address."""


class CustomerThrottle(SharedRateThrottle):
    """Counts by the signed-in customer (the token's subject)."""

    def ident(self, request, view) -> str | None:
        token = getattr(request.user, "token", None)
        subject = token.get("sub") if token is not None else None
        return f"customer:{subject}" if subject else None


def account_at_address(account: str, request) -> str | None:
    """The identity a failed sign-in is counted under: the account tried, from this client address."""
    account = account.strip().lower() if isinstance(account, str) else ""
    return f"{account}|{client_address(request)}" if account else None


class AccountFailureThrottle(SharedRateThrottle):
    """Failed sign-ins at the email tried from this client address (``<throttle_scope>_account``).

    Counted per address, so that failures made by someone else never lock an account's owner out.
    """

    scope_suffix = "_account"
    failures_only = True

    def ident(self, request, view) -> str | None:
        return account_at_address(request.data.get("email") if hasattr(request.data, "get") else None, request)


class CustomerFailureThrottle(CustomerThrottle):
    """Failures of the signed-in customer (e.g. declined payments)."""

    failures_only = True


class AddressFailureThrottle(AddressThrottle):
    """Failures from this client address, whichever customer made them."""

    failures_only = True


def failures_record(view, request) -> None:
    """Count one failure against each of the view's failure throttles."""
    for throttle in view.get_throttles():
        if throttle.failures_only:
            check(throttle.scope_of(view), throttle.ident(request, view))


class WritesThrottled:
    """A view mixin: its writes (not GET, HEAD, OPTIONS) count against ``throttle_scope`` per customer and address."""

    throttle_classes = [CustomerThrottle, AddressThrottle]

    def get_throttles(self):
        return [] if self.request.method in SAFE_METHODS else super().get_throttles()


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


def _refusal(request, wait: int):
    detail = f"Too many sign-in attempts; retry in {wait} seconds."
    return negotiated_problem(request, exceptions.Throttled(wait=wait, detail=detail))


def throttled_login(view, *, scope: str = "admin_login"):
    """Wrap a staff login view: its POSTs are rate limited and hash in a slot.

    Every attempt counts against the client address (``scope``); a failed one also against
    the username from that address (``<scope>_account``), so nobody locks a username out.
    """

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = request.POST.get("username", "")
        wait = check(scope, client_address(request)) or exceeded(
            f"{scope}_account", account_at_address(username, request)
        )
        if wait is not None:
            return _refusal(request, wait)
        try:
            with password_hash_slot():
                response = view(request, *args, **kwargs)
        except PasswordHashingBusy as busy:
            return negotiated_problem(request, busy)
        if not response.has_header("Location"):  # a sign-in redirects; a refused one shows the form again
            check(f"{scope}_account", account_at_address(username, request))
        return response

    return wrapped
