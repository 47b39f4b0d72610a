"""A deterministic demo shop, built with no external file through each module's own services.

The seeder is composition code like ``config/urls.py``: it calls every module's public
services in turn, so the events between modules flow exactly as in real use.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test.utils import override_settings

GENRES = [
    "Fantasy", "Science Fiction", "Mystery", "Thriller", "Romance", "Historical Fiction",
    "Biography", "History", "Poetry", "Philosophy", "Travel", "Cooking", "Children's", "Horror",
]  # fmt: skip
FIRST_NAMES = [
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kaja", "Luca",
    "Mira", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomasz", "Ulla", "Vera", "Wen", "Yusuf",
]  # fmt: skip
LAST_NAMES = [
    "Abbott", "Bianchi", "Castell", "Dufresne", "Eriksen", "Fontaine", "Gallo", "Haddad", "Ivanova", "Jansen",
    "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Torres",
]  # fmt: skip
TITLE_ADJECTIVES = [
    "Silent", "Crimson", "Hidden", "Last", "Forgotten", "Golden", "Winter", "Broken", "Distant", "Secret",
    "Burning", "Quiet", "Lost", "Glass", "Iron", "Hollow", "Wandering", "Northern", "Paper", "Midnight",
]  # fmt: skip
TITLE_NOUNS = [
    "Garden", "River", "Archive", "Lantern", "Harbour", "Orchard", "Library", "Mountain", "Cartographer",
    "Clockmaker", "Island", "Kingdom", "Letters", "Map", "Observatory", "Voyage", "Empire", "Tide", "Forest",
]  # fmt: skip
LANGUAGES = ["en"] * 8 + ["fr", "de", "it", "es"]
DEMO_PASSWORD = "quire-demo-reader"  # every demo customer signs in with it


class DemoPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with few iterations, for demo accounts whose password is published anyway.

    The hash keeps the standard ``pbkdf2_sha256`` format, so the regular hasher verifies it
    (and upgrades it to full strength when Django decides to); seeding stays fast.
    """

    iterations = 1000


@dataclass
class SeedSummary:
    books: int = 0
    customers: int = 0
    orders: int = 0


def isbn13_for(number: int) -> str:
    """A valid ISBN-13 in the 979-8 range (check digit computed), unique per ``number``."""
    digits = f"9798{number:08d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def seed_catalog(*, books: int, seed: int, report: Callable[[str], None] = print) -> list:
    """Genres, authors and ``books`` books with stock, through catalog's services."""
    from catalog.services import author_create, book_create, genre_create

    rng = random.Random(seed)
    genres = [genre_create(name=name) for name in GENRES]
    authors = [
        author_create(name=f"{first} {last}")
        for first, last in rng.sample([(f, la) for f in FIRST_NAMES for la in LAST_NAMES], 120)
    ]
    catalogue = []
    for number in range(books):
        # Authors write in one or two genres and in series, so "more like this" has structure to find.
        author = authors[number % len(authors)]
        genre_pair = [genres[(number % len(authors)) % len(genres)], genres[rng.randrange(len(genres))]]
        title = f"The {rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}"
        if rng.random() < 0.3:
            title += f" ({author.name.split()[-1]} Chronicles, #{number // len(authors) + 1})"
        catalogue.append(
            book_create(
                title=title,
                authors=[author] + ([rng.choice(authors)] if rng.random() < 0.1 else []),
                genres=list(dict.fromkeys(genre_pair)),
                price=Decimal(rng.randrange(599, 3499)) / 100,
                currency="EUR",
                isbn13=isbn13_for(number),
                language=rng.choice(LANGUAGES),
                publication_year=rng.randrange(1850, 2026),
                description=f"A demo book: {title}, by {author.name}.",
                on_hand=rng.choice([0, 2, 5, 10, 20, 40]),
            )
        )
    report(f"{len(catalogue)} books in {len(genres)} genres by {len(authors)} authors")
    return catalogue


def seed_customers(*, customers: int, report: Callable[[str], None] = print) -> list:
    """``customers`` demo customers, all with the password :data:`DEMO_PASSWORD`."""
    from accounts.services import customer_register

    registered = []
    for index in range(customers):
        first, last = FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[index % len(LAST_NAMES)]
        with override_settings(PASSWORD_HASHERS=["config.demo.DemoPasswordHasher"]):
            customer = customer_register(
                email=f"{first.lower()}.{last.lower()}@demo.quire.test",
                password=DEMO_PASSWORD,
                name=f"{first} {last}",
            )
        if customer is not None:  # None: that demo email is registered already
            registered.append(customer)
    report(f"{len(registered)} customers (password {DEMO_PASSWORD!r})")
    return registered


def seed_orders(*, customers: list, catalogue: list, seed: int, report: Callable[[str], None] = print) -> int:
    """A few orders per customer, each customer favouring a genre; some paid, some shipped.

    Needs catalog and orders in this process: the saga settles synchronously after commit.
    """
    from orders.errors import UnpaidHoldLimit
    from orders.payments import Card
    from orders.services import LineRequest, order_pay, order_place, order_ship

    rng = random.Random(seed)
    in_stock = [book for book in catalogue if book.stock.on_hand > 0]
    genres = sorted({genre.name for book in in_stock for genre in book.genres.all()})
    card = Card(number="4242424242424242", exp_month=12, exp_year=2099, cvc="123")
    placed = 0
    for index, customer in enumerate(customers):
        favourite = rng.choice(genres)
        liked = [book for book in in_stock if favourite in {g.name for g in book.genres.all()}] or in_stock
        for order_number in range(rng.randrange(1, 4)):
            picks = rng.sample(liked, k=min(len(liked), rng.randrange(1, 4)))
            try:
                order = order_place(
                    customer_id=customer.id, lines=[LineRequest(book_id=book.id, quantity=1) for book in picks]
                )
            except UnpaidHoldLimit as refusal:
                # The shop's limits hold for demo customers too: a book scarce enough that half its
                # copies already wait for payment is refused, as it would be to a real customer.
                report(f"an order of {customer.email} not placed: {refusal}")
                continue
            placed += 1
            if order_number == 0:
                try:
                    order_pay(order_id=order.id, customer_id=customer.id, card=card)
                    if index % 2 == 0:
                        order_ship(order_id=order.id)
                except Exception as error:  # a rejected order (out of stock) cannot be paid: fine
                    report(f"order {order.id} left as it is: {error}")
    report(f"{placed} orders")
    return placed


def seed_demo(
    *, modules: tuple[str, ...], books: int = 300, customers: int = 12, seed: int = 7, report=print
) -> SeedSummary:
    """Seed the parts of the demo shop that belong to ``modules`` (those this process serves).

    In one process: books, customers and their orders. In a split shop, the catalog service
    seeds books and the accounts service customers; orders and recommendations learn of the
    books through events, and the customers can sign in and buy.
    """
    summary = SeedSummary()
    catalogue = seed_catalog(books=books, seed=seed, report=report) if "catalog" in modules else []
    registered = seed_customers(customers=customers, report=report) if "accounts" in modules else []
    summary.books, summary.customers = len(catalogue), len(registered)
    if {"accounts", "catalog", "orders"} <= set(modules):
        summary.orders = seed_orders(customers=registered, catalogue=catalogue, seed=seed + 1, report=report)
    return summary
