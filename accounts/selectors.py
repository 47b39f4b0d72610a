"""Read queries of accounts."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.models import Address, Customer, normalize_email


def customer_get(*, customer_id: uuid.UUID) -> Customer | None:
    return Customer.objects.filter(id=customer_id).first()


def customer_refused(customer_id: uuid.UUID) -> bool:
    """True if no active customer has this id (deactivated or deleted): their tokens are refused."""
    return not Customer.objects.filter(id=customer_id, is_active=True).exists()


def customer_get_by_email(*, email: str) -> Customer | None:
    return Customer.objects.filter(email=normalize_email(email)).first()


def customer_email_taken(*, email: str, exclude_id: uuid.UUID | None = None) -> bool:
    customers = Customer.objects.filter(email=normalize_email(email))
    if exclude_id is not None:
        customers = customers.exclude(id=exclude_id)
    return customers.exists()


def address_list(*, customer_id: uuid.UUID) -> QuerySet[Address]:
    return Address.objects.filter(customer_id=customer_id).order_by("-is_default", "-created_at", "id")


def address_get(*, customer_id: uuid.UUID, address_id: uuid.UUID) -> Address | None:
    """The customer's address, or None: another customer's address does not exist for them."""
    return Address.objects.filter(customer_id=customer_id, id=address_id).first()
