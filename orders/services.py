"""orders' write use-cases. Each runs in one transaction on the ``orders`` database and
records its events there, so an event is stored if and only if its change is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from messaging import publish
from orders import contracts, holds, payments
from orders.errors import CartItemNotFound, IdempotencyKeyInFlight, IllegalTransition, OrderNotFound
from orders.idempotency import (
    IdempotencyClaim,
    IdempotentResult,
    idempotency_claim,
    idempotency_complete,
    idempotency_hold,
    idempotency_release,
    idempotency_result,
    idempotency_unlock,
)
from orders.metrics import CHECKOUT_SETTLE_SECONDS, CHECKOUTS, PENDING_RESOLVED
from orders.models import (
    MAX_LINE_QUANTITY,
    Cart,
    CartItem,
    Customer,
    CustomerAccess,
    Order,
    OrderLine,
    PaymentAttempt,
    Product,
)
from orders.routers import DATABASE

logger = logging.getLogger(__name__)

MAX_ORDER_LINES = 100

State = Order.State


# --- the product copy (fed by catalog's events) -------------------------------------


def _product_for_update(book_id: int) -> Product:
    product, _ = Product.objects.select_for_update().get_or_create(book_id=book_id)
    return product


@dataclass(frozen=True)
class ProductState:
    """A book's public state as catalog.BookPublished/BookUpdated carry it, as of ``as_of``."""

    book_id: int
    title: str
    price: Decimal
    currency: str
    active: bool
    available: int
    as_of: datetime


def _state_apply(product: Product, state: ProductState) -> None:
    # An event older than what was already applied changes nothing; stock carried by the
    # book event is applied only if newer than the last StockChanged.
    if product.state_as_of is None or state.as_of >= product.state_as_of:
        product.title = state.title[:500]
        product.price = state.price
        product.currency = state.currency.upper()
        product.active = state.active
        product.withdrawn = False
        product.state_as_of = state.as_of
    if product.stock_as_of is None or state.as_of >= product.stock_as_of:
        product.available = state.available
        product.stock_as_of = state.as_of


_STATE_FIELDS = ["title", "price", "currency", "active", "withdrawn", "state_as_of", "available", "stock_as_of"]


def product_state_apply(
    *,
    book_id: int,
    title: str,
    price: Decimal,
    currency: str,
    active: bool,
    available: int,
    as_of: datetime,
) -> Product:
    """Apply a book's public state (from catalog.BookPublished/BookUpdated) as of ``as_of``.

    An event older than what was already applied changes nothing; stock carried by the
    book event is applied only if newer than the last StockChanged.
    """
    with transaction.atomic(using=DATABASE):
        product = _product_for_update(book_id)
        _state_apply(product, ProductState(book_id, title, price, currency, active, available, as_of))
        product.save()
    return product


def products_state_apply(*, states: Sequence[ProductState]) -> None:
    """:func:`product_state_apply` for many books: the same effect as applying ``states`` one by one,
    in their order, in a few statements (a bulk import's thousands of events)."""
    with transaction.atomic(using=DATABASE):
        products = {
            product.book_id: product
            for product in Product.objects.select_for_update().filter(book_id__in={state.book_id for state in states})
        }
        new: dict[int, Product] = {}
        for state in states:
            product = products.get(state.book_id)
            if product is None:
                product = products[state.book_id] = new[state.book_id] = Product(book_id=state.book_id)
            _state_apply(product, state)
        now = timezone.now()
        for product in products.values():
            product.updated_at = now
        # A product another writer inserted meanwhile fails this insert: the caller applies one by one.
        Product.objects.bulk_create(new.values())
        known = [product for book_id, product in products.items() if book_id not in new]
        Product.objects.bulk_update(known, [*_STATE_FIELDS, "updated_at"], batch_size=500)


def customer_state_apply(*, customer_id: uuid.UUID, email: str, name: str, as_of: datetime) -> Customer:
    """Apply a customer's name and email (accounts.CustomerRegistered/CustomerUpdated) as of ``as_of``.

    An event older than what was already applied changes nothing.
    """
    with transaction.atomic(using=DATABASE):
        customer, created = Customer.objects.select_for_update().get_or_create(
            customer_id=customer_id, defaults={"email": email, "name": name[:150], "state_as_of": as_of}
        )
        if not created and as_of >= customer.state_as_of:
            customer.email = email
            customer.name = name[:150]
            customer.state_as_of = as_of
            customer.save()
    return customer


def product_withdraw(*, book_id: int, as_of: datetime) -> Product:
    """Mark a book withdrawn (catalog.BookWithdrawn), unless a newer state was applied since."""
    with transaction.atomic(using=DATABASE):
        product = _product_for_update(book_id)
        if product.state_as_of is None or as_of >= product.state_as_of:
            product.withdrawn = True
            product.active = False
            product.state_as_of = as_of
            product.save()
    return product


def product_stock_apply(*, book_id: int, available: int, as_of: datetime) -> Product:
    """Apply a stock level (catalog.StockChanged); creates a partial product if the book is unknown yet."""
    with transaction.atomic(using=DATABASE):
        product = _product_for_update(book_id)
        if product.stock_as_of is None or as_of >= product.stock_as_of:
            product.available = available
            product.stock_as_of = as_of
            product.save()
    return product


def _product_for_sale(book_id: int, *, field: str) -> Product:
    product = Product.objects.filter(book_id=book_id).first()
    if product is None or not product.is_known:
        raise ValidationError({field: f"No book {book_id} is for sale."}, code="unknown_book")
    if not product.for_sale:
        raise ValidationError({field: f"'{product.title}' (book {book_id}) is no longer sold."}, code="not_for_sale")
    return product


def _check_quantity(quantity: int, *, field: str) -> None:
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise ValidationError({field: f"Quantity must be between 1 and {MAX_LINE_QUANTITY}."}, code="quantity")


# --- cart ------------------------------------------------------------------------------


def _cart_for_update(customer_id: uuid.UUID) -> Cart:
    cart, _ = Cart.objects.get_or_create(customer_id=customer_id)
    # Lock the cart row so that two concurrent changes of one cart apply one after the other.
    return Cart.objects.select_for_update().get(pk=cart.pk)


def cart_item_add(*, customer_id: uuid.UUID, book_id: int, quantity: int = 1) -> tuple[CartItem, bool]:
    """Put ``quantity`` copies of a book for sale into the customer's cart (adding to any already there).

    Returns the item and whether it is new in the cart.
    """
    _check_quantity(quantity, field="quantity")
    with transaction.atomic(using=DATABASE):
        _product_for_sale(book_id, field="book_id")
        cart = _cart_for_update(customer_id)
        item = cart.items.filter(book_id=book_id).first()
        created = item is None
        if created:
            if cart.items.count() >= MAX_ORDER_LINES:
                # A cart the checkout would refuse is no use to anyone: stop it at the checkout's limit.
                raise ValidationError(
                    {"book_id": f"A cart holds at most {MAX_ORDER_LINES} books, as many as an order takes."},
                    code="too_many",
                )
            item = CartItem.objects.create(cart=cart, book_id=book_id, quantity=quantity)
        else:
            if item.quantity + quantity > MAX_LINE_QUANTITY:
                raise ValidationError(
                    {
                        "quantity": f"At most {MAX_LINE_QUANTITY} copies of one book per order; "
                        f"the cart already holds {item.quantity}."
                    },
                    code="quantity",
                )
            item.quantity += quantity
            item.save(update_fields=["quantity", "updated_at"])
        cart.save(update_fields=["updated_at"])
    return item, created


def cart_item_quantity_set(*, customer_id: uuid.UUID, book_id: int, quantity: int) -> CartItem:
    """Set how many copies of a book already in the cart; raises :class:`CartItemNotFound` if it is not."""
    _check_quantity(quantity, field="quantity")
    with transaction.atomic(using=DATABASE):
        cart = _cart_for_update(customer_id)
        item = cart.items.filter(book_id=book_id).first()
        if item is None:
            raise CartItemNotFound(book_id)
        _product_for_sale(book_id, field="book_id")
        item.quantity = quantity
        item.save(update_fields=["quantity", "updated_at"])
        cart.save(update_fields=["updated_at"])
    return item


def cart_item_remove(*, customer_id: uuid.UUID, book_id: int) -> None:
    """Take a book out of the cart; raises :class:`CartItemNotFound` if it is not there."""
    with transaction.atomic(using=DATABASE):
        cart = _cart_for_update(customer_id)
        deleted, _ = cart.items.filter(book_id=book_id).delete()
        if not deleted:
            raise CartItemNotFound(book_id)
        cart.save(update_fields=["updated_at"])


def cart_clear(*, customer_id: uuid.UUID) -> None:
    """Empty the customer's cart."""
    with transaction.atomic(using=DATABASE):
        CartItem.objects.filter(cart__customer_id=customer_id).delete()


# --- checkout ---------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    book_id: int
    quantity: int


Responder = Callable[[Order], tuple[int, Any]]


def order_place(
    *,
    customer_id: uuid.UUID,
    lines: Sequence[LineRequest] | None = None,
    idempotency: IdempotencyClaim | None = None,
    respond: Responder | None = None,
) -> Order:
    """Turn the customer's cart (or the given ``lines``) into a pending order and record OrderPlaced.

    Unit prices come from orders' own copy of the catalog, never from the client. Checking
    out the cart empties it; an explicit ``lines`` checkout ("buy now") leaves the cart as
    it is. With ``idempotency``, the claimed record is completed with ``respond(order)`` in
    the same transaction as the order, so a replay can never see one without the other.
    """
    try:
        order = _order_place(customer_id=customer_id, lines=lines, idempotency=idempotency, respond=respond)
    except ValidationError:
        CHECKOUTS.labels("refused").inc()
        raise
    return order


def _order_place(
    *,
    customer_id: uuid.UUID,
    lines: Sequence[LineRequest] | None,
    idempotency: IdempotencyClaim | None,
    respond: Responder | None,
) -> Order:
    with transaction.atomic(using=DATABASE):
        record = idempotency_hold(claim=idempotency) if idempotency is not None else None
        # The customer's cart row is the lock that serializes their checkouts, "buy now" too, so
        # that two at once cannot both pass the cap on unpaid copies (holds.unpaid_cap_check).
        customer_cart = _cart_for_update(customer_id)
        cart = None
        if lines is None:
            cart = customer_cart
            items = list(cart.items.all())
            if not items:
                raise ValidationError({"cart": "Your cart is empty: add books to it, or send lines."}, code="empty")
            requested = [LineRequest(book_id=item.book_id, quantity=item.quantity) for item in items]
            prefix = "cart.items"
        else:
            requested = list(lines)
            prefix = "lines"
        products = _products_for_checkout(requested, prefix=prefix)
        holds.unpaid_cap_check(
            customer_id=customer_id, requested=[(line.book_id, line.quantity) for line in requested], prefix=prefix
        )

        currencies = sorted({products[line.book_id].currency for line in requested})
        if len(currencies) > 1:
            raise ValidationError(
                {prefix: f"One order takes books priced in one currency; these are in {', '.join(currencies)}."},
                code="currency",
            )
        order = Order.objects.create(customer_id=customer_id, currency=currencies[0])
        order_lines = [
            OrderLine(
                order=order,
                book_id=line.book_id,
                title=products[line.book_id].title,
                quantity=line.quantity,
                unit_price=products[line.book_id].price,
                line_total=products[line.book_id].price * line.quantity,
            )
            for line in requested
        ]
        OrderLine.objects.bulk_create(order_lines)
        order.total = sum((line.line_total for line in order_lines), Decimal("0.00"))
        order.save(update_fields=["total", "updated_at"])
        publish(
            contracts.OrderPlaced(
                order_id=order.id,
                customer_id=customer_id,
                lines=_contract_lines(order_lines),
                total=order.total,
                currency=order.currency,
            )
        )
        if cart is not None:
            cart.items.all().delete()
            cart.save(update_fields=["updated_at"])
        if record is not None:
            status, body = respond(order) if respond is not None else (201, {"id": str(order.id)})
            idempotency_complete(record=record, status=status, body=body, order_id=order.id)
        transaction.on_commit(CHECKOUTS.labels("placed").inc, using=DATABASE)
    return order


def _products_for_checkout(requested: Sequence[LineRequest], *, prefix: str) -> dict[int, Product]:
    errors: dict[str, str] = {}
    if not requested:
        raise ValidationError({prefix: "An order needs at least one line."}, code="empty")
    if len(requested) > MAX_ORDER_LINES:
        raise ValidationError({prefix: f"An order takes at most {MAX_ORDER_LINES} lines."}, code="too_many")
    products = Product.objects.in_bulk([line.book_id for line in requested])
    seen: set[int] = set()
    for index, line in enumerate(requested):
        field = f"{prefix}[{index}]"
        product = products.get(line.book_id)
        if line.book_id in seen:
            errors[f"{field}.book_id"] = f"Book {line.book_id} appears twice: send one line per book."
        elif product is None or not product.is_known:
            errors[f"{field}.book_id"] = f"No book {line.book_id} is for sale."
        elif not product.for_sale:
            errors[f"{field}.book_id"] = f"'{product.title}' (book {line.book_id}) is no longer sold."
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            errors[f"{field}.quantity"] = f"Quantity must be between 1 and {MAX_LINE_QUANTITY}."
        seen.add(line.book_id)
    if errors:
        raise ValidationError(errors)
    return products


def _contract_lines(lines: Sequence[OrderLine]) -> list[contracts.OrderLine]:
    return [
        contracts.OrderLine(book_id=line.book_id, quantity=line.quantity, unit_price=line.unit_price) for line in lines
    ]


def order_place_idempotently(
    *,
    customer_id: uuid.UUID,
    key: str,
    fingerprint: str,
    respond: Responder,
    lines: Sequence[LineRequest] | None = None,
) -> IdempotentResult:
    """Checkout under an Idempotency-Key: the first request places the order, a retry replays its response.

    Only a successful checkout is remembered: if placing the order fails (bad input,
    empty cart, a crash), the key is released and the client may retry with it.
    """
    claimed = idempotency_claim(customer_id=customer_id, key=key, fingerprint=fingerprint)
    if isinstance(claimed, IdempotentResult):
        CHECKOUTS.labels("replayed").inc()
        return claimed
    try:
        try:
            order = order_place(customer_id=customer_id, lines=lines, idempotency=claimed, respond=respond)
        except IdempotencyKeyInFlight:
            raise
        except BaseException:
            idempotency_release(claim=claimed)
            raise
        return idempotency_result(claim=claimed, order_id=order.id)
    finally:
        # Also when the release failed (the database went away): the ended session frees the lock.
        idempotency_unlock(claim=claimed)


# --- lifecycle ------------------------------------------------------------------------


def _locked_order(order_id: uuid.UUID, *, customer_id: uuid.UUID | None = None) -> Order:
    # Every transition locks the order row first, so concurrent transitions serialize.
    orders = Order.objects.select_for_update()
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    order = orders.filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(order_id)
    return order


def _lines_of(order: Order) -> list[contracts.OrderLine]:
    return _contract_lines(list(order.lines.all()))


def _request_release(order: Order, *, now: datetime) -> None:
    """Ask catalog to release whatever it holds for this order (it releases on was_confirmed=True)."""
    order.release_requested_at = now
    order.save(update_fields=["release_requested_at", "updated_at"])
    publish(
        contracts.OrderCancelled(
            order_id=order.id, customer_id=order.customer_id, lines=_lines_of(order), was_confirmed=True
        )
    )


def order_confirm(*, order_id: uuid.UUID) -> Order:
    """React to catalog having reserved the order's stock (catalog.StockReserved).

    pending → confirmed and OrderConfirmed. If the order was cancelled (or rejected) before
    the reservation arrived, catalog holds stock nobody will buy: ask it to release once.
    Any other state means this fact was already applied: nothing to do.
    """
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id)
        now = timezone.now()
        if order.state == State.PENDING:
            order.state = State.CONFIRMED
            order.confirmed_at = now
            order.payment_due_at = holds.payment_due_for(now)
            order.save(update_fields=["state", "confirmed_at", "payment_due_at", "updated_at"])
            publish(contracts.OrderConfirmed(order_id=order.id, customer_id=order.customer_id, lines=_lines_of(order)))
            _settled(order, "confirmed", now)
        elif order.state in (State.CANCELLED, State.REJECTED) and order.release_requested_at is None:
            logger.info("stock reserved for %s order %s: asking catalog to release it", order.state, order.id)
            _request_release(order, now=now)
    return order


def _settled(order: Order, outcome: str, at: datetime) -> None:
    """Observe the saga's settle time once this transition commits (a duplicate event changes no state)."""
    seconds = max((at - order.created_at).total_seconds(), 0.0)
    transaction.on_commit(lambda: CHECKOUT_SETTLE_SECONDS.labels(outcome).observe(seconds), using=DATABASE)


@dataclass(frozen=True)
class RejectedLineInfo:
    book_id: int
    reason: str
    requested: int
    available: int


def order_reject(*, order_id: uuid.UUID, rejected_lines: Sequence[RejectedLineInfo]) -> Order:
    """React to catalog having refused the order's stock (catalog.StockRejected).

    pending → rejected with the reasons per line, and OrderRejected. In any other state
    there is nothing to undo (catalog held nothing), so the event changes nothing.
    """
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id)
        if order.state != State.PENDING:
            if order.state not in (State.REJECTED, State.CANCELLED):
                logger.warning("stock rejected for order %s which is already %s: ignored", order.id, order.state)
            return order
        by_book = {line.book_id: line for line in rejected_lines}
        for line in order.lines.all():
            rejected = by_book.get(line.book_id)
            if rejected is not None:
                line.rejection_reason = rejected.reason[:50]
                line.rejection_available = rejected.available
                line.save(update_fields=["rejection_reason", "rejection_available"])
        order.state = State.REJECTED
        order.rejected_at = timezone.now()
        order.save(update_fields=["state", "rejected_at", "updated_at"])
        _settled(order, "rejected", order.rejected_at)
        publish(
            contracts.OrderRejected(
                order_id=order.id,
                customer_id=order.customer_id,
                reasons=[
                    contracts.RejectionReason(
                        book_id=line.book_id, reason=line.reason, requested=line.requested, available=line.available
                    )
                    for line in rejected_lines
                ],
            )
        )
    return order


_CANNOT_PAY = {
    State.PENDING: "The order is still waiting for its stock to be confirmed; pay once it is confirmed.",
    State.REJECTED: "The order was rejected because its stock is unavailable; it cannot be paid.",
    State.PAID: "The order is already paid.",
    State.SHIPPED: "The order is already paid and shipped.",
    State.CANCELLED: "The order was cancelled; it cannot be paid.",
}


def order_pay(*, order_id: uuid.UUID, customer_id: uuid.UUID, card: payments.Card) -> PaymentAttempt:
    """Pay a confirmed order with a (simulated) card: confirmed → paid and OrderPaid.

    A declined card is recorded as a declined attempt and the order stays confirmed.
    Raises :class:`OrderNotFound` if the customer has no such order, :class:`IllegalTransition`
    if it is not confirmed.
    """
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id, customer_id=customer_id)
        if order.state != State.CONFIRMED:
            raise IllegalTransition(order_id=order.id, state=order.state, action="pay", reason=_CANNOT_PAY[order.state])
        result = payments.charge(card)
        attempt = PaymentAttempt.objects.create(
            order=order,
            amount=order.total,
            currency=order.currency,
            card_brand=card.brand,
            card_last4=card.last4,
            outcome=PaymentAttempt.Outcome.APPROVED if result.approved else PaymentAttempt.Outcome.DECLINED,
            decline_code=result.decline_code,
            reference=result.reference,
        )
        if result.approved:
            order.state = State.PAID
            order.paid_at = timezone.now()
            order.payment_reference = result.reference
            order.save(update_fields=["state", "paid_at", "payment_reference", "updated_at"])
            publish(
                contracts.OrderPaid(
                    order_id=order.id, customer_id=order.customer_id, amount=order.total, currency=order.currency
                )
            )
    return attempt


def order_ship(*, order_id: uuid.UUID) -> Order:
    """Staff hand a paid order to the carrier: paid → shipped and OrderShipped (catalog books the sale)."""
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id)
        if order.state != State.PAID:
            raise IllegalTransition(
                order_id=order.id,
                state=order.state,
                action="ship",
                reason=f"Only paid orders can be shipped; this one is {order.state}.",
            )
        order.state = State.SHIPPED
        order.shipped_at = timezone.now()
        order.save(update_fields=["state", "shipped_at", "updated_at"])
        publish(contracts.OrderShipped(order_id=order.id, customer_id=order.customer_id, lines=_lines_of(order)))
    return order


_CANNOT_CANCEL = {
    State.REJECTED: "The order was rejected; there is nothing to cancel.",
    State.PAID: "A paid order cannot be cancelled here; contact support for a refund.",
    State.SHIPPED: "The order has shipped; it cannot be cancelled.",
    State.CANCELLED: "The order is already cancelled.",
}


def order_cancel(*, order_id: uuid.UUID, customer_id: uuid.UUID) -> Order:
    """The owner cancels a pending or confirmed order and OrderCancelled is recorded.

    ``was_confirmed`` tells catalog whether it holds stock to release. Should catalog
    reserve after a cancel of a pending order, :func:`order_confirm` asks for the release.
    """
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id, customer_id=customer_id)
        if order.state not in (State.PENDING, State.CONFIRMED):
            raise IllegalTransition(
                order_id=order.id, state=order.state, action="cancel", reason=_CANNOT_CANCEL[order.state]
            )
        was_confirmed = order.state == State.CONFIRMED
        now = timezone.now()
        order.state = State.CANCELLED
        order.cancelled_at = now
        order.cancellation_reason = holds.CANCELLED_BY_CUSTOMER
        update_fields = ["state", "cancelled_at", "cancellation_reason", "updated_at"]
        if was_confirmed:
            order.release_requested_at = now
            update_fields.append("release_requested_at")
        order.save(update_fields=update_fields)
        publish(
            contracts.OrderCancelled(
                order_id=order.id, customer_id=order.customer_id, lines=_lines_of(order), was_confirmed=was_confirmed
            )
        )
    return order


def customer_access_apply(*, customer_id: uuid.UUID, active: bool, as_of: datetime) -> None:
    """Record what accounts said of a customer (deactivated, reactivated, deleted); newer facts win."""
    with transaction.atomic(using=DATABASE):
        CustomerAccess.apply(customer_id=customer_id, active=active, as_of=as_of)


# --- sagas that never settle ------------------------------------------------------------

#: The reason an overdue order is rejected with, on the order and on each line of OrderRejected.
NOT_CONFIRMED_IN_TIME = "not_confirmed_in_time"


class PendingOutcome:
    REANNOUNCED = "reannounced"
    REJECTED = "rejected"
    WAITING = "waiting"  # re-announced less than a timeout ago: its answer may still come
    SETTLED = "settled"  # it moved on meanwhile


def _resolved(action: str) -> None:
    transaction.on_commit(PENDING_RESOLVED.labels(action).inc, using=DATABASE)


def order_pending_resolve(*, order_id: uuid.UUID, timeout: timedelta, max_reannouncements: int) -> str:
    """Move an order that stayed pending longer than ``timeout`` towards an end (a :class:`PendingOutcome`).

    Its OrderPlaced may have been lost (an outage, a crash) or catalog's answer may have: the
    first ``max_reannouncements`` times (``timeout`` apart) OrderPlaced is published again under
    a new event id, which catalog answers once more if it had answered (and reserves once if it
    had not). After that the order is rejected (``not_confirmed_in_time``) with OrderRejected,
    and catalog is asked to release whatever it may hold for it (OrderCancelled,
    ``was_confirmed=True``), which also makes a late OrderPlaced reserve nothing.
    """
    with transaction.atomic(using=DATABASE):
        order = _locked_order(order_id)
        now = timezone.now()
        if order.state != State.PENDING:
            return PendingOutcome.SETTLED
        last = order.reannounced_at or order.created_at
        if now - last < timeout:
            return PendingOutcome.WAITING
        if order.reannounced_count < max_reannouncements:
            order.reannounced_count += 1
            order.reannounced_at = now
            order.save(update_fields=["reannounced_count", "reannounced_at", "updated_at"])
            lines = list(order.lines.all())
            publish(
                contracts.OrderPlaced(
                    order_id=order.id,
                    customer_id=order.customer_id,
                    lines=_contract_lines(lines),
                    total=order.total,
                    currency=order.currency,
                )
            )
            _resolved(PendingOutcome.REANNOUNCED)
            logger.warning(
                "order %s pending for %.0fs: OrderPlaced announced again (%d of %d)",
                order.id,
                (now - order.created_at).total_seconds(),
                order.reannounced_count,
                max_reannouncements,
            )
            return PendingOutcome.REANNOUNCED
        lines = list(order.lines.all())
        books = [line.book_id for line in lines]
        available = dict(Product.objects.filter(book_id__in=books).values_list("book_id", "available"))
        for line in lines:
            line.rejection_reason = NOT_CONFIRMED_IN_TIME
            line.save(update_fields=["rejection_reason"])
        order.state = State.REJECTED
        order.rejected_at = now
        order.rejection_reason = NOT_CONFIRMED_IN_TIME
        order.save(update_fields=["state", "rejected_at", "rejection_reason", "updated_at"])
        _settled(order, "rejected", now)  # settled by the resolver, like any other rejection
        _resolved(PendingOutcome.REJECTED)
        publish(
            contracts.OrderRejected(
                order_id=order.id,
                customer_id=order.customer_id,
                reasons=[
                    contracts.RejectionReason(
                        book_id=line.book_id,
                        reason=NOT_CONFIRMED_IN_TIME,
                        requested=line.quantity,
                        available=max(available.get(line.book_id, 0), 0),
                    )
                    for line in lines
                ],
            )
        )
        _request_release(order, now=now)
        logger.warning(
            "order %s pending for %.0fs after %d re-announcement(s): rejected (%s)",
            order.id,
            (now - order.created_at).total_seconds(),
            order.reannounced_count,
            NOT_CONFIRMED_IN_TIME,
        )
        return PendingOutcome.REJECTED
