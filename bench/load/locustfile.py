"""Quire's mixed workload for locust: customers who browse, look at books, fill carts and check out.

The mix is issue 13's, after Google's Online Boutique load generator: per 18 tasks a customer
browses the book list 10 times (first pages in several orders, searches for a word seen in a
title, filters by price, stock and language or genre, next pages by cursor), opens a book 5 times
(its detail and its "more like this" from recommendations), adds a book to the cart and takes it
out again twice, and checks out once (an ``Idempotency-Key``, then waits until the order is
confirmed or rejected, pays a confirmed one and reads its own picks from recommendations).

Each user is one customer of the file ``--customers-file`` names (JSON: email, password and a
refresh token each; ``bench/load/run.py`` registers and signs them in before the measured run,
because a password sign-in costs a full PBKDF2 hash, ~0.5 s of CPU). A user starts its session
with a token refresh (``--sign-in refresh``, the default) or a password sign-in (``--sign-in
password``, measured, and expensive), reads its profile and the genres, then runs the mix.

A checkout's settle time is from sending the order to the first read that shows it confirmed or
rejected. Those reads (``GET /api/orders/<id>/``, every 20 ms growing to 0.5 s) go through a client
of their own, outside locust's statistics: how often a client polls is not part of the mix, and
would make the topology that settles later look busier. Each checkout is a row of
``--settle-csv`` (with its number of reads), and a settle that does not come within
:data:`SETTLE_TIMEOUT_SECONDS` is a row with state ``timeout``.

Run through ``bench/load/run.sh``, which starts and seeds the shop; by hand against a running shop:
``locust -f bench/load/locustfile.py --headless -u 20 -r 5 -t 60s --host http://127.0.0.1:8000
--customers-file customers.json``.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
import time
import urllib.parse
import uuid
from pathlib import Path

import gevent
from geventhttpclient import HTTPClient
from locust import FastHttpUser, events, task

#: Task -> weight: issue 13's "browse 10 : book 5 : cart 2 : checkout 1" (docs/benchmarks.md).
MIX = {"browse": 10, "book": 5, "cart": 2, "checkout": 1}
SETTLED = ("confirmed", "rejected")
SETTLE_TIMEOUT_SECONDS = 30.0
SETTLE_FIRST_POLL_SECONDS = 0.02
SETTLE_MAX_POLL_SECONDS = 0.5
# Access tokens live JWT_ACCESS_TOKEN_SECONDS (900 s by default): refresh well before.
TOKEN_REFRESH_SECONDS = 600.0
ORDERINGS = ("title", "-title", "price", "-price", "-year")
GOOD_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "cardholder_name": "Load"}
SETTLE_COLUMNS = ("timestamp", "order_id", "state", "settle_seconds", "post_seconds", "polls")
#: Books a user remembers (what it saw last), words it may search for.
SEEN_BOOKS = 200
SEEN_WORDS = 100
FALLBACK_WORDS = ("the", "night", "love", "world")

_next_customer = itertools.count()
_customers: list[dict] | None = None
_settle_file = None
_settle_writer = None


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument(
        "--customers-file",
        default="",
        help="JSON list of customers (email, password, refresh), one per user; bench/load/run.py writes it",
    )
    parser.add_argument(
        "--settle-csv",
        default="",
        help="CSV file to which every checkout appends its settle time (empty: not written)",
    )
    parser.add_argument(
        "--sign-in",
        choices=("refresh", "password"),
        default="refresh",
        help="how a user starts its session: a token refresh (default) or a password sign-in (a full hash)",
    )
    parser.add_argument("--think-min", type=float, default=0.5, help="shortest wait between two tasks (s)")
    parser.add_argument("--think-max", type=float, default=1.5, help="longest wait between two tasks (s)")


def customers(path: str) -> list[dict]:
    global _customers
    if _customers is None:
        if not path:
            raise SystemExit("locustfile: set --customers-file (bench/load/run.py writes one)")
        _customers = json.loads(Path(path).read_text())
        if not _customers:
            raise SystemExit(f"locustfile: {path} lists no customer")
    return _customers


def record_settle(path: str, row: dict) -> None:
    """Append one checkout to the settle CSV (one process, one greenlet at a time: no lock needed)."""
    global _settle_file, _settle_writer
    if not path:
        return
    if _settle_writer is None:
        new = not Path(path).exists() or Path(path).stat().st_size == 0
        _settle_file = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run, closed at test_stop
        _settle_writer = csv.DictWriter(_settle_file, fieldnames=SETTLE_COLUMNS)
        if new:
            _settle_writer.writeheader()
    _settle_writer.writerow(row)
    _settle_file.flush()


@events.test_stop.add_listener
def _close_settle_csv(**_) -> None:
    global _settle_file, _settle_writer
    if _settle_file is not None:
        _settle_file.close()
        _settle_file = _settle_writer = None


class Customer(FastHttpUser):
    """One signed-in customer running the mix (:data:`MIX`)."""

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        return random.uniform(options.think_min, options.think_max)

    # --- session ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        options = self.environment.parsed_options
        known = customers(options.customers_file)
        self.customer = known[next(_next_customer) % len(known)]
        self.access = ""
        self.signed_in_at = 0.0
        self.seen: dict[int, int] = {}  # book id -> copies available when last seen
        self.words: list[str] = []
        self.languages: list[str] = []
        self.genres: list[str] = []
        self.next_page: str | None = None
        # Settle reads go outside locust's statistics (see the module's docstring).
        self.poller = HTTPClient.from_url(self.host, concurrency=1, connection_timeout=10, network_timeout=30)
        self.sign_in()
        self.client.get("/api/accounts/me/", headers=self.auth(), name="/api/accounts/me/")
        with self.client.get("/api/catalog/genres/", name="/api/catalog/genres/", catch_response=True) as response:
            if response.status_code == 200:
                self.genres = [genre["slug"] for genre in response.json().get("results", [])]
        self.list_books({"ordering": "title"}, "first page")

    def on_stop(self) -> None:
        self.poller.close()

    def sign_in(self) -> None:
        if self.environment.parsed_options.sign_in == "password":
            body = {"email": self.customer["email"], "password": self.customer["password"]}
            path, name = "/api/accounts/token/", "/api/accounts/token/ [sign in]"
        else:
            body = {"refresh": self.customer["refresh"]}
            path, name = "/api/accounts/token/refresh/", "/api/accounts/token/refresh/ [session]"
        with self.client.post(path, json=body, name=name, catch_response=True) as response:
            if response.status_code == 200:
                self.access = response.json()["access"]
                self.signed_in_at = time.monotonic()

    def auth(self) -> dict[str, str]:
        if time.monotonic() - self.signed_in_at > TOKEN_REFRESH_SECONDS:
            self.sign_in()
        return {"Authorization": f"Bearer {self.access}"}

    # --- what a customer does ---------------------------------------------------------------------

    @task(MIX["browse"])
    def browse(self) -> None:
        if self.next_page and random.random() < 0.4:
            self.list_books(self.next_page, "next page")
            return
        kind = random.choices(("first page", "search", "filter"), weights=(4, 3, 3))[0]
        if kind == "first page":
            query = {"ordering": random.choice(ORDERINGS)}
        elif kind == "search":
            query = {"search": random.choice(self.words or FALLBACK_WORDS)}
        else:
            query = {"price_max": random.choice((10, 15, 20, 30)), "in_stock": "true"}
            if self.genres and random.random() < 0.5:
                query["genre"] = random.choice(self.genres)
            elif self.languages and random.random() < 0.5:
                query["language"] = random.choice(self.languages)
        self.list_books(query, kind)

    @task(MIX["book"])
    def book(self) -> None:
        if not self.seen:
            self.list_books({"ordering": "title"}, "first page")
            return
        book_id = random.choice(list(self.seen))
        with self.client.get(
            f"/api/catalog/books/{book_id}/", name="/api/catalog/books/[id]/", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.remember([response.json()])
        with self.client.get(
            f"/api/recommendations/books/{book_id}/similar/",
            name="/api/recommendations/books/[id]/similar/",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                # What a reader sees next to a book is what it may open next.
                for similar in response.json().get("results", [])[:5]:
                    self.seen.setdefault(similar["book_id"], 0)  # copies unknown until its page is open

    @task(MIX["cart"])
    def cart(self) -> None:
        picked = self.in_stock(1)
        if not picked:
            return
        headers = self.auth()
        added = self.client.post(
            "/api/orders/cart/items/",
            json={"book_id": picked[0], "quantity": 1},
            headers=headers,
            name="/api/orders/cart/items/ [add]",
        )
        self.client.get("/api/orders/cart/", headers=headers, name="/api/orders/cart/")
        if added.status_code in (200, 201):
            self.client.delete(
                f"/api/orders/cart/items/{picked[0]}/", headers=headers, name="/api/orders/cart/items/[id]/ [remove]"
            )

    @task(MIX["checkout"])
    def checkout(self) -> None:
        picked = self.in_stock(random.randint(1, 2))
        if not picked:
            return
        headers = {**self.auth(), "Idempotency-Key": str(uuid.uuid4())}
        started = time.monotonic()
        with self.client.post(
            "/api/orders/",
            json={"lines": [{"book_id": book_id, "quantity": 1} for book_id in picked]},
            headers=headers,
            name="/api/orders/ [checkout]",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"checkout answered {response.status_code}: {(response.text or '')[:200]}")
                return
            order = response.json()
        posted = time.monotonic() - started
        state, polls = self.settle(order, started)
        for book_id in picked:
            self.seen[book_id] = max(0, self.seen.get(book_id, 1) - 1)
        record_settle(
            self.environment.parsed_options.settle_csv,
            {
                "timestamp": f"{time.time():.3f}",
                "order_id": order["id"],
                "state": state,
                "settle_seconds": f"{time.monotonic() - started:.4f}",
                "post_seconds": f"{posted:.4f}",
                "polls": polls,
            },
        )
        if state == "confirmed":
            self.client.post(
                f"/api/orders/{order['id']}/pay/", json=GOOD_CARD, headers=self.auth(), name="/api/orders/[id]/pay/"
            )
        self.client.get("/api/recommendations/me/", headers=self.auth(), name="/api/recommendations/me/")

    # --- helpers -----------------------------------------------------------------------------------

    def settle(self, order: dict, started: float) -> tuple[str, int]:
        """Read the order until it is confirmed or rejected: (its state or 'timeout'/'error', reads)."""
        state, polls, pause = order["state"], 0, SETTLE_FIRST_POLL_SECONDS
        path = f"/api/orders/{order['id']}/"
        while state not in SETTLED:
            if time.monotonic() - started > SETTLE_TIMEOUT_SECONDS:
                return "timeout", polls
            gevent.sleep(pause)
            pause = min(pause * 1.5, SETTLE_MAX_POLL_SECONDS)
            polls += 1
            response = self.poller.get(path, headers={**self.auth(), "Accept": "application/json"})
            try:
                body = response.read()
            finally:
                response.release()
            if response.status_code != 200:
                return "error", polls
            state = json.loads(body)["state"]
        return state, polls

    def list_books(self, query: dict | str, kind: str) -> None:
        """One page of the book list (``query``: parameters, or the ``next`` link of the last page)."""
        if isinstance(query, str):
            link = urllib.parse.urlsplit(query)
            path = f"{link.path}?{link.query}"
        else:
            path = "/api/catalog/books/?" + urllib.parse.urlencode(query)
        with self.client.get(path, name=f"/api/catalog/books/ [{kind}]", catch_response=True) as response:
            if response.status_code != 200:
                return
            page = response.json()
        self.next_page = page.get("next")
        self.remember(page.get("results", []))

    def remember(self, books: list[dict]) -> None:
        for book in books:
            self.seen.pop(book["id"], None)
            self.seen[book["id"]] = book.get("available", 0)
            self.words.extend(word for word in re.findall(r"[A-Za-z]{4,}", book.get("title", "")))
            if book.get("language") and book["language"] not in self.languages:
                self.languages.append(book["language"])
        while len(self.seen) > SEEN_BOOKS:
            self.seen.pop(next(iter(self.seen)))
        del self.words[:-SEEN_WORDS]

    def in_stock(self, count: int) -> list[int]:
        """Up to ``count`` different books this user saw with copies available (browsing for some if none)."""
        available = [book_id for book_id, copies in self.seen.items() if copies > 0]
        if not available:
            self.list_books({"in_stock": "true", "ordering": random.choice(ORDERINGS)}, "filter")
            available = [book_id for book_id, copies in self.seen.items() if copies > 0]
        return random.sample(available, min(count, len(available)))
