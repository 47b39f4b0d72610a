"""The minimal copy of accounts' facts a module needs to refuse a deactivated customer's tokens.

A module that serves customers keeps one row per customer accounts has told it about
(``customer_id``, ``active``), from ``accounts.CustomerDeactivated``/``Reactivated``/``Deleted``.
The token is still checked statelessly; this copy only answers "has this module seen the customer
switched off?" from the module's own database, so no request ever calls accounts.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib import admin
from django.db import models


class CustomerAccessBase(models.Model):
    """Subclassed in a module's models.py (a table in its own database)."""

    customer_id = models.UUIDField(primary_key=True)
    active = models.BooleanField()
    #: The envelope time of the event applied last: an older event arriving late changes nothing.
    as_of = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.customer_id} ({'active' if self.active else 'refused'})"

    @classmethod
    def apply(cls, *, customer_id: uuid.UUID, active: bool, as_of: datetime) -> None:
        """Record the customer's state as of ``as_of``, unless a newer one is recorded already."""
        current = cls.objects.select_for_update().filter(customer_id=customer_id).first()
        if current is None:
            cls.objects.create(customer_id=customer_id, active=active, as_of=as_of)
        elif current.as_of <= as_of:
            current.active, current.as_of = active, as_of
            current.save(update_fields=["active", "as_of"])

    @classmethod
    def refused(cls, customer_id: uuid.UUID) -> bool:
        """True once the module has seen the customer deactivated or deleted (one primary-key lookup)."""
        return cls.objects.filter(customer_id=customer_id, active=False).exists()


class CustomerAccessAdmin(admin.ModelAdmin):
    """Read only: the rows are accounts' facts; change a customer in accounts' admin instead."""

    list_display = ["customer_id", "active", "as_of"]
    list_filter = ["active"]
    search_fields = ["customer_id"]
    ordering = ["-as_of"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
