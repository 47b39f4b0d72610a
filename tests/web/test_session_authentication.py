"""web.auth.SessionAuthentication: no user lookup without a session cookie; staff by session as before."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.functional import empty
from rest_framework.request import Request

from web.auth import SessionAuthentication

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])


def through_django_middleware(django_request):
    """The request as Django's session and authentication middleware leave it: a lazy, unread user."""
    for middleware in (SessionMiddleware, AuthenticationMiddleware):
        middleware(lambda request: HttpResponse()).process_request(django_request)
    return django_request


def test_a_request_without_a_session_cookie_is_anonymous_without_a_lookup():
    django_request = through_django_middleware(RequestFactory().get("/api/catalog/books/"))
    assert SessionAuthentication().authenticate(Request(django_request)) is None
    assert django_request.user._wrapped is empty  # never looked up
    assert not django_request.user.is_authenticated  # and anonymous when it is


def test_a_user_set_before_drf_reads_it_is_taken_without_a_cookie():
    staff = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    django_request = RequestFactory().get("/api/catalog/books/")
    django_request.user = staff  # as the staff token middleware sets it
    django_request._dont_enforce_csrf_checks = True
    assert SessionAuthentication().authenticate(Request(django_request)) == (staff, None)


def test_staff_signed_in_by_session_list_withdrawn_books_and_anonymous_may_not():
    get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    browser = Client()
    assert browser.get("/api/catalog/books/?status=withdrawn").status_code == 403
    assert browser.login(username="clerk", password="x")
    assert browser.get("/api/catalog/books/?status=withdrawn").status_code == 200
