"""Write use-cases of accounts. Each runs in one transaction on the accounts database and records its events there."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.contracts import (
    CustomerDeactivated,
    CustomerDeleted,
    CustomerReactivated,
    CustomerRegistered,
    CustomerUpdated,
)
from accounts.models import Address, Customer, normalize_email
from accounts.routers import DATABASE
from accounts.selectors import customer_email_taken, customer_get_by_email
from messaging import publish, publish_many
from web.throttling import password_hash_slot

EMAIL_TAKEN = "A customer with this email already exists."
ADDRESS_FIELDS = frozenset(
    {"label", "recipient", "line1", "line2", "city", "region", "postal_code", "country", "phone", "is_default"}
)


def _password_errors(password: str, *, customer: Customer) -> list[ValidationError]:
    try:
        validate_password(password, user=customer)
    except ValidationError as error:
        return error.error_list
    return []


def _save_unique_email(customer: Customer, **save_kwargs: Any) -> None:
    """Save, turning the race where two requests claim one email into the same field error as the check."""
    try:
        with transaction.atomic(using=DATABASE):
            customer.save(**save_kwargs)
    except IntegrityError as error:
        if customer_email_taken(email=customer.email, exclude_id=customer.id):
            raise ValidationError({"email": ValidationError(EMAIL_TAKEN, code="unique")}) from error
        raise


def _registered(customer: Customer) -> CustomerRegistered:
    return CustomerRegistered(customer_id=customer.id, email=customer.email, name=customer.name)


def _updated(customer: Customer) -> CustomerUpdated:
    return CustomerUpdated(customer_id=customer.id, email=customer.email, name=customer.name)


def _activity_changed(customer_id: uuid.UUID, *, is_active: bool) -> CustomerDeactivated | CustomerReactivated:
    return (CustomerReactivated if is_active else CustomerDeactivated)(customer_id=customer_id)


class _EmailTaken(Exception):
    """The insert lost the race for an email another request claimed first."""


def customer_register(*, email: str, password: str, name: str) -> Customer | None:
    """Create a customer account and publish ``accounts.CustomerRegistered``; None if the email is taken.

    The caller must answer both outcomes alike, so that registration does not tell anyone
    which emails have accounts: a taken email costs the same password hashing and leaves
    the existing account untouched. Raises ``ValidationError`` naming ``password`` (refused
    by ``AUTH_PASSWORD_VALIDATORS``), which depends on the request alone.
    """
    customer = Customer(email=normalize_email(email), name=name.strip())
    if password_errors := _password_errors(password, customer=customer):
        raise ValidationError({"password": password_errors})
    # Hashing is deliberately slow: do it before the transaction opens, whether or not the email is free,
    # in one of the process's hashing slots.
    with password_hash_slot():
        customer.set_password(password)
    if customer_email_taken(email=customer.email):
        return None
    try:
        with transaction.atomic(using=DATABASE):
            _save_unless_taken(customer)
            publish(_registered(customer))
    except _EmailTaken:
        return None
    return customer


def _save_unless_taken(customer: Customer, **save_kwargs: Any) -> None:
    """Save a new customer (or, with ``update_fields``, a changed email); :class:`_EmailTaken` if another has it."""
    try:
        with transaction.atomic(using=DATABASE):
            customer.save(**(save_kwargs or {"force_insert": True}))
    except IntegrityError as error:
        if customer_email_taken(email=customer.email):
            raise _EmailTaken from error
        raise


def customer_authenticate(*, email: str, password: str) -> Customer | None:
    """The active customer with these credentials, or None (never saying which part was wrong)."""
    customer = customer_get_by_email(email=email)
    with password_hash_slot():
        if customer is None:
            # Spend the hashing time anyway, so response times do not tell which emails are registered.
            make_password(password)
            return None

        def upgrade_hash(raw_password: str) -> None:
            with transaction.atomic(using=DATABASE):
                Customer.objects.filter(id=customer.id).update(password_hash=make_password(raw_password))

        if not customer.check_password(password, on_upgrade=upgrade_hash) or not customer.is_active:
            return None
    return customer


def customer_update(*, customer: Customer, name: str | None = None) -> Customer:
    """Change a customer's name; publishes ``accounts.CustomerUpdated`` if it changed.

    The email is changed by :func:`customer_email_change` alone, which asks for the password.
    """
    if name is None or name.strip() == customer.name:
        return customer
    with transaction.atomic(using=DATABASE):
        customer.name = name.strip()
        customer.save(update_fields=["name", "updated_at"])
        publish(_updated(customer))
    return customer


def _password_confirm(customer: Customer, password: str, *, field: str) -> None:
    with password_hash_slot():
        if not customer.check_password(password):
            raise ValidationError(
                {field: ValidationError("The current password is not correct.", code="password_incorrect")}
            )


def customer_email_change(*, customer: Customer, email: str, password: str) -> bool:
    """Make ``email`` the customer's sign-in email if no other account has it; True if it changed.

    Needs the current password (a stolen access token must not move an account to another
    mailbox). A taken email changes nothing and raises nothing: the caller answers both
    outcomes alike, as registration does, so the endpoint does not tell which emails have
    accounts. Publishes ``accounts.CustomerUpdated`` when the email changed. Raises
    ``ValidationError`` naming ``password`` when it is not the current one.
    """
    _password_confirm(customer, password, field="password")
    email = normalize_email(email)
    if email == customer.email:
        return False
    try:
        with transaction.atomic(using=DATABASE):
            if customer_email_taken(email=email, exclude_id=customer.id):
                return False
            customer.email = email
            _save_unless_taken(customer, update_fields=["email", "updated_at"])
            publish(_updated(customer))
    except _EmailTaken:
        customer.refresh_from_db(fields=["email", "updated_at"])
        return False
    return True


def customer_password_change(*, customer: Customer, old_password: str, new_password: str) -> Customer:
    """Replace the password after checking the current one.

    Refresh tokens issued before the change stop working (they carry a fingerprint of
    the password hash); access tokens run out on their own within minutes.
    """
    errors: dict[str, list[ValidationError]] = {}
    try:
        _password_confirm(customer, old_password, field="old_password")
    except ValidationError as error:
        errors.update(error.error_dict)
    if password_errors := _password_errors(new_password, customer=customer):
        errors["new_password"] = password_errors
    if errors:
        raise ValidationError(errors)
    with password_hash_slot():
        customer.set_password(new_password)
    with transaction.atomic(using=DATABASE):
        customer.save(update_fields=["password_hash", "updated_at"])
    return customer


def customer_save_by_operator(*, customer: Customer, password: str | None = None) -> Customer:
    """Save a customer edited by staff in the admin, publishing the same events as the API would.

    A new customer needs a password; for an existing one, ``password`` (if given) replaces it.
    """
    customer.email = normalize_email(customer.email)
    customer.name = customer.name.strip()
    if password:
        customer.set_password(password)
    elif customer._state.adding:
        raise ValidationError({"password": ValidationError("A new customer needs a password.", code="required")})
    with transaction.atomic(using=DATABASE):
        if customer._state.adding:
            _save_unique_email(customer, force_insert=True)
            publish(_registered(customer))
            return customer
        before = Customer.objects.filter(id=customer.id).values("email", "name", "is_active").first()
        _save_unique_email(customer)
        if before is not None and (before["email"], before["name"]) != (customer.email, customer.name):
            publish(_updated(customer))
        if before is not None and before["is_active"] != customer.is_active:
            publish(_activity_changed(customer.id, is_active=customer.is_active))
    return customer


def customer_set_active(*, customer_ids: list[uuid.UUID], is_active: bool) -> int:
    """Activate or deactivate customers in bulk (an operator's action); returns how many changed.

    A deactivated customer can no longer sign in or refresh, and publishes
    ``accounts.CustomerDeactivated``: every module refuses their access tokens as soon as
    it has seen it (``CustomerReactivated`` undoes that).
    """
    with transaction.atomic(using=DATABASE):
        # Locked, so that the events name exactly the customers this call changed.
        changing = list(
            Customer.objects.select_for_update()
            .filter(id__in=customer_ids)
            .exclude(is_active=is_active)
            .values_list("id", flat=True)
        )
        Customer.objects.filter(id__in=changing).update(is_active=is_active, updated_at=timezone.now())
        for customer_id in changing:
            publish(_activity_changed(customer_id, is_active=is_active))
        return len(changing)


def customer_delete(*, customer_ids: list[uuid.UUID]) -> int:
    """Delete customers (an operator's action) with their addresses; publishes ``accounts.CustomerDeleted``.

    Returns how many were deleted. Other modules keep their own facts (orders stay orders) but
    refuse the deleted customers' tokens as soon as they have seen the event.
    """
    with transaction.atomic(using=DATABASE):
        deleting = list(Customer.objects.select_for_update().filter(id__in=customer_ids).values_list("id", flat=True))
        Customer.objects.filter(id__in=deleting).delete()
        for customer_id in deleting:
            publish(CustomerDeleted(customer_id=customer_id))
        return len(deleting)


def _address_data(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(data) - ADDRESS_FIELDS
    if unknown:
        raise TypeError(f"not address fields: {', '.join(sorted(unknown))}")
    cleaned = dict(data)
    if "country" in cleaned:
        cleaned["country"] = cleaned["country"].strip().upper()
    return cleaned


def _lock_customer(customer_id: uuid.UUID) -> Customer:
    # One writer per customer's address book at a time keeps "exactly one default" true.
    return Customer.objects.select_for_update().get(id=customer_id)


def _clear_default(customer_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> None:
    Address.objects.filter(customer_id=customer_id, is_default=True).exclude(id=keep).update(is_default=False)


def address_create(*, customer_id: uuid.UUID, data: Mapping[str, Any]) -> Address:
    """Add an address to a customer's book. The first address, or one marked ``is_default``, becomes the default."""
    address = Address(customer_id=customer_id, **_address_data(data))
    with transaction.atomic(using=DATABASE):
        _lock_customer(customer_id)
        first = not Address.objects.filter(customer_id=customer_id).exists()
        if address.is_default or first:
            _clear_default(customer_id)
            address.is_default = True
        address.full_clean(exclude=["customer"])
        address.save(force_insert=True)
    return address


def address_update(*, address: Address, data: Mapping[str, Any]) -> Address:
    """Change some fields of an address; marking it ``is_default`` takes the mark from the previous default."""
    changes = _address_data(data)
    with transaction.atomic(using=DATABASE):
        _lock_customer(address.customer_id)
        if changes.get("is_default"):
            _clear_default(address.customer_id, keep=address.id)
        for field, value in changes.items():
            setattr(address, field, value)
        address.full_clean(exclude=["customer"])
        address.save()
    return address


def address_delete(*, address: Address) -> None:
    """Remove an address; if it was the default, the most recent remaining one takes over."""
    with transaction.atomic(using=DATABASE):
        _lock_customer(address.customer_id)
        was_default = address.is_default
        customer_id = address.customer_id
        address.delete()
        if was_default:
            successor = Address.objects.filter(customer_id=customer_id).order_by("-created_at").first()
            if successor is not None:
                successor.is_default = True
                successor.save(update_fields=["is_default", "updated_at"])


def customers_republish(*, batch_size: int = 500, progress=None) -> int:
    """Publish ``accounts.CustomerUpdated`` for every customer, so that a module that starts
    consuming accounts' events (orders' customer copy) learns the customers registered before.

    Each batch commits with its outbox rows; a consumer that already has a customer applies
    the same name and email again (its copy keeps the newest). Returns the number published.
    """
    total = Customer.objects.count()
    done = 0
    last_id = None
    while True:
        with transaction.atomic(using=DATABASE):
            batch = Customer.objects.order_by("id")
            if last_id is not None:
                batch = batch.filter(id__gt=last_id)
            customers = list(batch[:batch_size])
            if not customers:
                break
            publish_many([_updated(customer) for customer in customers])
        last_id = customers[-1].id
        done += len(customers)
        if progress is not None:
            progress("customers", done, total)
    return done
