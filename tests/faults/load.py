"""The load of a fault drill: customers checking out, one order after another, while the drill does its damage."""

from __future__ import annotations

import random
import threading

from tests.faults.harness import Placed, SplitShop


class OrderStream(threading.Thread):
    """Customers checking out one order after another until :meth:`finish` or ``limit`` orders.

    Lines are drawn from ``books`` (1 or 2 books, 1 to 3 copies each) with a fixed seed, so a
    scarce book runs out and some orders are rejected while most are confirmed.
    """

    def __init__(
        self,
        shop: SplitShop,
        books: list[int],
        *,
        limit: int | None = None,
        customers: int = 4,
        pause: float = 0.0,
        seed: int = 7,
        retry_for: float = 0.0,
    ):
        super().__init__(name="order-stream", daemon=True)
        self.shop = shop
        self.books = books
        self.customers = shop.customers(customers)
        self.pause = pause
        self.random = random.Random(seed)
        self.placed: list[Placed] = []
        self._finish = threading.Event()
        self.limit = limit
        self.retry_for = retry_for  # seconds a refused checkout is retried with its key (Retry-After)

    def lines(self) -> list[dict]:
        chosen = self.random.sample(self.books, self.random.choice((1, 2)))
        return [{"book_id": book, "quantity": self.random.randint(1, 3)} for book in chosen]

    def run(self) -> None:
        while not self._finish.is_set() and (self.limit is None or len(self.placed) < self.limit):
            customer = self.customers[len(self.placed) % len(self.customers)]
            self.placed.append(self.shop.place_order(customer, self.lines(), retry_for=self.retry_for))
            if self.pause:
                self._finish.wait(self.pause)  # a steady pace of checkouts, not a wait for a condition

    def finish(self, timeout: float = 60) -> list[Placed]:
        """Stop after the checkout in hand; every order placed."""
        self._finish.set()
        return self.complete(timeout)

    def complete(self, timeout: float = 60) -> list[Placed]:
        """Wait for the stream to end by itself (its ``limit``); every order placed."""
        self.join(timeout)
        assert not self.is_alive(), "the order stream did not stop"
        return self.placed

    @property
    def count(self) -> int:
        return len(self.placed)
