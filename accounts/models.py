"""Customers and their addresses. Customers are not Django users: staff are."""

from __future__ import annotations

import uuid

from django.contrib.auth.hashers import check_password, is_password_usable, make_password
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower


def normalize_email(email: str) -> str:
    """One spelling per mailbox, so that ``Ann@Example.com`` cannot register twice."""
    return email.strip().lower()


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True, help_text="Stored in lower case.")
    name = models.CharField(max_length=150)
    password_hash = models.CharField(max_length=256, editable=False)
    is_active = models.BooleanField(
        default=True, db_index=True, help_text="Inactive customers cannot sign in or refresh their tokens."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Belt and braces: services store emails lower-cased, the database refuses any case-variant twin.
            models.UniqueConstraint(Lower("email"), name="accounts_customer_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def set_password(self, raw_password: str) -> None:
        self.password_hash = make_password(raw_password)

    def check_password(self, raw_password: str, *, on_upgrade=None) -> bool:
        """``on_upgrade`` is called with the raw password when the stored hash uses outdated parameters."""
        return check_password(raw_password, self.password_hash, setter=on_upgrade)

    @property
    def has_usable_password(self) -> bool:
        return is_password_usable(self.password_hash)


class Address(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(max_length=50, blank=True, help_text='What the customer calls it: "Home", "Office".')
    recipient = models.CharField(max_length=150)
    line1 = models.CharField("address line 1", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField(max_length=100, blank=True, help_text="State, province or county.")
    postal_code = models.CharField(max_length=20)
    country = models.CharField(
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO 3166-1 country code, e.g. GB.")],
        help_text="ISO 3166-1 alpha-2 code, e.g. GB.",
    )
    phone = models.CharField(max_length=30, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        verbose_name_plural = "addresses"
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(is_default=True), name="accounts_address_one_default"
            ),
        ]

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.line1, self.city, self.postal_code, self.country) if part)
        return f"{self.label or self.recipient}: {where}"
