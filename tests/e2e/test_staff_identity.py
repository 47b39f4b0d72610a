"""One staff identity through the gateway: sign in once at accounts, every admin accepts the permissions given."""

from __future__ import annotations

import re
import textwrap
import uuid

from tests.e2e.harness import Shop

PASSWORD = "Clerk-Pa55word!"


def test_staff_sign_in_once_at_accounts_and_each_admin_grants_exactly_their_permissions(shop: Shop):
    username = f"clerk-{uuid.uuid4().hex[:8]}"
    # Staff exist in accounts only, given catalog's permission there (accounts knows every module's).
    shop.manage(
        "accounts",
        "shell",
        "-c",
        textwrap.dedent(f"""
            from django.contrib.auth.models import Permission, User
            user = User.objects.create_user({username!r}, password={PASSWORD!r}, is_staff=True)
            user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename="view_book"))
        """),
    )
    clerk = shop.client()
    shop.admin_login(clerk, "accounts", username=username, password=PASSWORD)
    html = {"Accept": "text/html"}

    books = clerk.get(shop.admin_prefix("catalog") + "catalog/book/", headers=html)
    assert books.status == 200 and "Select book to view" in books.text, books
    orders = clerk.get(shop.admin_prefix("orders") + "orders/order/", headers=html)
    assert orders.status == 403, orders  # signed in there too, but not given orders' permission
    customers = clerk.get(shop.admin_prefix("accounts") + "accounts/customer/", headers=html)
    assert customers.status == 403, customers

    # Signing out at accounts signs out everywhere: the staff token is gone with the session.
    index = clerk.get(shop.admin_prefix("accounts"), headers=html)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', index.text)
    assert token, index
    logout = shop.admin_prefix("accounts") + "logout/"
    out = clerk.request(
        "POST",
        logout,
        form={"csrfmiddlewaretoken": token.group(1)},
        headers={**html, "Referer": clerk.url(logout)},
    )
    assert out.status == 200, out
    again = clerk.get(shop.admin_prefix("catalog") + "catalog/book/", headers=html)
    assert again.status == 302 and "/login/" in again.headers["Location"], again
