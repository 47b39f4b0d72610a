"""One staff identity through the gateway: sign in once at accounts, every admin accepts the permissions given."""

from __future__ import annotations

import re
import textwrap
import urllib.request
import uuid

from tests.e2e.harness import MODULES, STAFF_PASSWORD, STAFF_USERNAME, Shop

STAFF_TOKEN_COOKIE = "quire_staff"

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


def test_no_service_is_sent_another_services_session_or_csrf_cookie(shop: Shop):
    clients = {module: shop.staff(module) for module in MODULES}  # staff signed in, a session at every admin
    jar = clients["accounts"].cookies
    sessions = {cookie.name for cookie in jar if cookie.name.endswith("sessionid")}
    assert len(sessions) == (1 if shop.topology == "one_process" else len(set(shop.process_of.values()))), sessions

    for module in MODULES:
        own = {"sessionid", "csrftoken"}
        if shop.topology != "one_process":
            process = shop.process_of[module]
            own = {f"quire_{process}_sessionid", f"quire_{process}_csrftoken"}
        for prefix in (f"/admin/{module}/", f"/api/{module}/"):
            request = urllib.request.Request(shop.base_url + prefix)
            jar.add_cookie_header(request)
            sent = {pair.split("=", 1)[0] for pair in request.get_header("Cookie", "").split("; ") if pair}
            # The staff token is the one identity every admin accepts (web/staff.py), at /admin/ only.
            expected = own | ({STAFF_TOKEN_COOKIE} if prefix.startswith("/admin/") else set())
            assert sent == expected, (prefix, sent)


def test_the_browsable_api_sign_in_reaches_the_service_and_its_session_works_there(shop: Shop):
    # Staff passwords are checked where staff live, in the process serving accounts; elsewhere the staff
    # token signs staff in through the admin, whose session that module's API shares (the test above).
    shop.staff("accounts")  # the staff user exists
    client = shop.client()
    html = {"Accept": "text/html"}
    start = "/api-auth/login/?next=/api/accounts/"
    page = client.get(start, headers=html)
    if shop.topology != "one_process":
        # The gateway routes by ?next= to the service, which sends the browser to its own sign-in.
        assert page.status == 302, page
        login = page.headers["Location"]
        assert re.match(r"^/api/accounts/auth/login/\?next=/api/accounts/$", login), login
        page = client.get(login, headers=html)
    else:
        login = start
    assert page.status == 200, page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page
    signed_in = client.request(
        "POST",
        login,
        form={"username": STAFF_USERNAME, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={**html, "Referer": client.url(login)},
    )
    assert signed_in.status == 302 and signed_in.headers["Location"] == "/api/accounts/", signed_in
    root = client.get("/api/accounts/", headers=html)
    assert root.status == 200 and STAFF_USERNAME in root.text, root
