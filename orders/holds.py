"""Unpaid reservations: how long a confirmed order may hold stock unpaid, and how much one customer may hold.

Stock hoarding is the abuse this answers: a confirmed order that is never paid keeps its
copies reserved, so a customer (or many accounts of one) could make every book unavailable.
Two rules bound it:

- **Deadline.** A confirmed order must be paid within ``ORDERS_PAYMENT_TIMEOUT_SECONDS``; its
  ``payment_due_at`` is set at confirmation and shown to the customer. Past it,
  :func:`order_expire_unpaid` (run by ``manage.py orders_expire_unpaid``, periodically from
  ``run_service``) cancels the order with ``cancellation_reason = "payment_timeout"`` and
  records ``OrderCancelled`` (``was_confirmed=True``: catalog releases the copies) and
  ``OrderExpired`` (why). A payment that arrives before the sweep is still accepted: the
  copies were still held, so nothing is oversold.
- **Cap.** A customer's open unpaid orders (pending or confirmed) may hold at most
  ``ORDERS_MAX_UNPAID_COPIES_PER_BOOK`` copies of one book and ``ORDERS_MAX_UNPAID_COPIES``
  in all (0 = no limit). :func:`unpaid_cap_check` runs in checkout's transaction, under a
  lock of the customer's cart row, so two concurrent checkouts of one customer cannot both
  slip under the cap.
- **Shop-wide share.** Registration is cheap, so many accounts could each stay under their own
  cap and together hold every copy. While open unpaid orders of *all* customers hold
  ``ORDERS_MAX_UNPAID_SHARE_PER_BOOK`` of a book's copies (at least one copy; 0 = no limit), no
  new checkout may add to them: the rest stays for customers who pay. A first order is never
  refused by it (whatever it asks, catalog's reservation decides), so the unpaid copies of a
  book stay below that share plus one order. It is checked under a lock of the books' rows in
  orders' product copy, so concurrent checkouts of one book, by anyone, count each other.

Kept apart from ``services.py`` (its checkout and lifecycle) so that the rule reads in one place.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from messaging import publish
from orders import contracts
from orders.errors import UnpaidHoldLimit
from orders.models import Order, OrderLine, Product
from orders.routers import DATABASE

logger = logging.getLogger(__name__)

State = Order.State
#: ``Order.cancellation_reason`` values.
CANCELLED_BY_CUSTOMER = "customer"
PAYMENT_TIMEOUT = "payment_timeout"
#: States whose orders hold (or are about to hold) stock without having been paid.
UNPAID_OPEN = (State.PENDING, State.CONFIRMED)


def payment_timeout() -> timedelta:
    return timedelta(seconds=settings.ORDERS_PAYMENT_TIMEOUT_SECONDS)


def payment_due_for(confirmed_at: datetime) -> datetime | None:
    """The deadline of an order confirmed at ``confirmed_at`` (None when the timeout is off, 0)."""
    timeout = payment_timeout()
    return confirmed_at + timeout if timeout > timedelta(0) else None


# --- the cap ------------------------------------------------------------------------------


def unpaid_copies_held(*, customer_id: uuid.UUID) -> dict[int, int]:
    """Copies per book in the customer's open unpaid orders (pending or confirmed)."""
    rows = (
        OrderLine.objects.filter(order__customer_id=customer_id, order__state__in=UNPAID_OPEN)
        .values("book_id")
        .annotate(copies=Sum("quantity"))
    )
    return {row["book_id"]: row["copies"] for row in rows}


def unpaid_cap_check(*, customer_id: uuid.UUID, requested: Iterable[tuple[int, int]], prefix: str) -> None:
    """Refuse a checkout that would hold more unpaid copies than the customer may (:class:`UnpaidHoldLimit`).

    ``requested`` is (book_id, quantity) per line of the new order, in request order, and
    ``prefix`` the field path of its lines (``lines`` or ``cart.items``). Call it inside the
    checkout's transaction, after locking the customer's cart row.
    """
    per_book = settings.ORDERS_MAX_UNPAID_COPIES_PER_BOOK
    total_limit = settings.ORDERS_MAX_UNPAID_COPIES
    requested = list(requested)
    errors = _shop_share_errors(requested, prefix=prefix)
    if per_book <= 0 and total_limit <= 0 and not errors:
        return
    held = unpaid_copies_held(customer_id=customer_id) if per_book > 0 or total_limit > 0 else {}
    if per_book > 0:
        for index, (book_id, quantity) in enumerate(requested):
            already = held.get(book_id, 0)
            if already + quantity > per_book:
                errors.append(
                    {
                        "field": f"{prefix}[{index}].quantity",
                        "message": f"At most {per_book} unpaid copies of one book at a time; your open orders "
                        f"already hold {already} of book {book_id}, so at most {max(per_book - already, 0)} more.",
                        "code": "unpaid_copies_per_book",
                    }
                )
    held_total = sum(held.values())
    asked_total = sum(quantity for _, quantity in requested)
    if total_limit > 0 and held_total + asked_total > total_limit:
        errors.append(
            {
                "field": prefix,
                "message": f"At most {total_limit} unpaid copies in all at a time; your open orders already "
                f"hold {held_total} and this order asks for {asked_total}.",
                "code": "unpaid_copies_total",
            }
        )
    if errors:
        raise UnpaidHoldLimit(
            "This order would hold more unpaid copies than one customer may, or than the shop lets wait for "
            "payment: pay or cancel an open order first, or retry in a few minutes.",
            errors=errors,
            limits={
                "per_book": per_book,
                "total": total_limit,
                "held": held_total,
                "shop_share": settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK,
            },
        )


def _shop_share_errors(requested: list[tuple[int, int]], *, prefix: str) -> list[dict]:
    """The lines of books whose copies, shop-wide, already wait for payment up to the share allowed."""
    share = settings.ORDERS_MAX_UNPAID_SHARE_PER_BOOK
    if share <= 0:
        return []
    book_ids = sorted({book_id for book_id, _ in requested})
    # Lock the books' rows (in book_id order, as every writer of them does): concurrent checkouts of a
    # book serialize here, whoever places them, so each counts the orders of the others.
    available = dict(
        Product.objects.select_for_update().filter(book_id__in=book_ids).values_list("book_id", "available")
    )
    rows = (
        OrderLine.objects.filter(book_id__in=book_ids, order__state__in=UNPAID_OPEN)
        .values("book_id")
        .annotate(held=Sum("quantity"), reserved=Sum("quantity", filter=Q(order__state=State.CONFIRMED)))
    )
    held = {row["book_id"]: (row["held"], row["reserved"] or 0) for row in rows}
    errors = []
    for index, (book_id, _) in enumerate(requested):
        waiting, reserved = held.get(book_id, (0, 0))
        # The book's copies as orders knows them: on the shelf, and those its confirmed unpaid orders hold.
        copies = available.get(book_id, 0) + reserved
        limit = max(1, math.ceil(share * copies))
        if waiting >= limit:
            errors.append(
                {
                    "field": f"{prefix}[{index}].quantity",
                    "message": f"Many copies of book {book_id} are waiting for payment in open orders (at most "
                    f"{share:.0%} of its copies may): retry in a few minutes, when they are paid or released.",
                    "code": "unpaid_copies_shop",
                }
            )
    return errors


# --- the deadline ---------------------------------------------------------------------------


def orders_unpaid_overdue(*, now: datetime | None = None) -> QuerySet[Order]:
    """Confirmed orders past their payment deadline, oldest deadline first.

    Orders confirmed before deadlines existed (no ``payment_due_at``) are judged by
    ``confirmed_at`` and today's timeout.
    """
    now = now or timezone.now()
    timeout = payment_timeout()
    overdue = Q(payment_due_at__lte=now)
    if timeout > timedelta(0):
        overdue |= Q(payment_due_at__isnull=True, confirmed_at__lte=now - timeout)
    return Order.objects.filter(overdue, state=State.CONFIRMED).order_by("payment_due_at", "confirmed_at", "id")


def order_expire_unpaid(*, order_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Cancel one confirmed order whose payment deadline passed; True if it was, False if it moved on.

    Under the order's row lock, like every transition, so a payment racing the sweep either
    lands first (the order is paid: nothing to expire) or finds the order cancelled (409).
    Records ``OrderCancelled`` (catalog releases the copies) and ``OrderExpired``.
    """
    with transaction.atomic(using=DATABASE):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        now = now or timezone.now()
        if order is None or order.state != State.CONFIRMED:
            return False
        due = order.payment_due_at or (
            order.confirmed_at + payment_timeout() if payment_timeout() > timedelta(0) else None
        )
        if due is None or due > now:
            return False
        order.state = State.CANCELLED
        order.cancelled_at = now
        order.release_requested_at = now
        order.cancellation_reason = PAYMENT_TIMEOUT
        order.save(update_fields=["state", "cancelled_at", "release_requested_at", "cancellation_reason", "updated_at"])
        lines = [
            contracts.OrderLine(book_id=line.book_id, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines.all()
        ]
        publish(
            contracts.OrderCancelled(order_id=order.id, customer_id=order.customer_id, lines=lines, was_confirmed=True)
        )
        publish(
            contracts.OrderExpired(
                order_id=order.id,
                customer_id=order.customer_id,
                reason=PAYMENT_TIMEOUT,
                payment_due_at=due,
                lines=lines,
            )
        )
    logger.info("order %s not paid by %s: cancelled, its stock released", order_id, due.isoformat())
    return True
