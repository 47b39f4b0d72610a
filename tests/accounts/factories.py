"""Plain factory functions for accounts tests."""

from __future__ import annotations

import itertools
from typing import Any

from rest_framework.test import APIClient

from accounts import services, tokens
from accounts.models import Address, Customer, normalize_email
from messaging.models import OutboxMessage

PASSWORD = "correct horse battery staple"
_sequence = itertools.count(1)


def customer_create(
    *, email: str | None = None, name: str = "Ada Reader", password: str = PASSWORD, is_active: bool = True
) -> Customer:
    customer = Customer(
        email=normalize_email(email or f"reader{next(_sequence)}@example.com"), name=name, is_active=is_active
    )
    customer.set_password(password)
    customer.save(using="accounts")
    return customer


def address_data(**overrides: Any) -> dict[str, Any]:
    return {
        "label": "Home",
        "recipient": "Ada Reader",
        "line1": "12 Paper Lane",
        "city": "Oxford",
        "postal_code": "OX1 2AB",
        "country": "GB",
        **overrides,
    }


def address_create(*, customer: Customer, **overrides: Any) -> Address:
    return services.address_create(customer_id=customer.id, data=address_data(**overrides))


def client_for(customer: Customer | None = None) -> APIClient:
    """A JSON API client, signed in as ``customer`` when one is given."""
    client = APIClient()
    client.default_format = "json"
    if customer is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token_for(customer)}")
    return client


def outbox(event_type: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.using("accounts").filter(event_type=event_type).order_by("id"))


def error_fields(body: dict) -> set[str | None]:
    return {error["field"] for error in body["errors"]}
