import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from config.demo import DEMO_PASSWORD, isbn13_for

ALL_DATABASES = ["default", "accounts", "catalog", "orders", "recommendations"]


def test_demo_isbns_carry_a_valid_check_digit():
    from catalog.isbn import is_valid_isbn13

    assert all(is_valid_isbn13(isbn13_for(number)) for number in range(500))
    assert len({isbn13_for(number) for number in range(500)}) == 500


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_demo_shop_is_alive_after_seeding(settings):
    # Demo hashes are pbkdf2_sha256 at low cost: the regular hasher must verify them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    call_command("seed_demo", books=30, customers=3, seed=1)

    client = APIClient()
    books = client.get("/api/catalog/books/").json()
    assert len(books["results"]) > 0
    demo_email = "ada.abbott@demo.quire.test"
    token = client.post("/api/accounts/token/", {"email": demo_email, "password": DEMO_PASSWORD}, format="json")
    assert token.status_code == 200, token.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    orders = client.get("/api/orders/").json()["results"]
    assert orders, "every demo customer has at least one order"
    assert {order["state"] for order in orders} <= {"confirmed", "rejected", "paid", "shipped"}
    assert "pending" not in {order["state"] for order in orders}, "the saga settled every demo order"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_demo_shop_of_make_run_seeds_with_the_shops_limits_on(capsys):
    """``make run`` seeds the default shop (300 books, 12 customers) with every abuse limit at its default:
    an order those limits refuse is reported and the seeding goes on."""
    from orders.models import Order

    call_command("seed_demo")

    out = capsys.readouterr().out
    assert "300 books" in out and "12 customers" in out
    assert Order.objects.using("orders").count() >= 12
    assert not Order.objects.using("orders").filter(state="pending").exists()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_seeding_twice_with_if_empty_adds_nothing(capsys):
    call_command("seed_demo", books=5, customers=1, seed=1)
    capsys.readouterr()

    call_command("seed_demo", if_empty=True)

    assert "already has data" in capsys.readouterr().out


@pytest.mark.django_db(databases=["catalog"])
def test_a_catalog_service_seeds_only_its_books(settings, capsys):
    settings.SERVICE, settings.SERVED_MODULES = "catalog", ("catalog",)
    from catalog.models import Book

    call_command("seed_demo", books=7, customers=3)

    assert Book.objects.count() == 7
    assert "0 customers, 0 orders" in capsys.readouterr().out


@pytest.mark.django_db(databases=["catalog"])
def test_a_module_with_no_demo_data_of_its_own_says_so(settings, capsys):
    settings.SERVICE, settings.SERVED_MODULES = "recommendations", ("recommendations",)

    call_command("seed_demo")

    assert "learns from other modules' events" in capsys.readouterr().out
