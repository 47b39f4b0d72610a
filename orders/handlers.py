"""orders' reactions to other modules' events: its product and customer copies, and the checkout saga.

Each handler runs in a transaction on the orders database with its inbox row, so a
redelivered event is skipped. Events of different aggregates may arrive in any order,
and one aggregate's events may arrive late: book events are applied by their envelope
time (older than what is applied changes nothing), order events by the order's state.
"""

from __future__ import annotations

from accounts.contracts import CustomerRegistered, CustomerUpdated
from catalog.contracts import BookPublished, BookUpdated, BookWithdrawn, StockChanged, StockRejected, StockReserved
from messaging import handles, occurred_at
from orders import services


def _product_state_apply(event: BookPublished | BookUpdated) -> None:
    services.product_state_apply(
        book_id=event.book_id,
        title=event.title,
        price=event.price,
        currency=event.currency,
        active=event.active,
        available=event.available,
        as_of=occurred_at(event),
    )


@handles(BookPublished)
def product_state_apply_on_book_published(event: BookPublished) -> None:
    _product_state_apply(event)


@handles(BookUpdated)
def product_state_apply_on_book_updated(event: BookUpdated) -> None:
    _product_state_apply(event)


@handles(BookWithdrawn)
def product_withdraw_on_book_withdrawn(event: BookWithdrawn) -> None:
    services.product_withdraw(book_id=event.book_id, as_of=occurred_at(event))


@handles(StockChanged)
def product_stock_apply_on_stock_changed(event: StockChanged) -> None:
    services.product_stock_apply(book_id=event.book_id, available=event.available, as_of=occurred_at(event))


@handles(StockReserved)
def order_confirm_on_stock_reserved(event: StockReserved) -> None:
    services.order_confirm(order_id=event.order_id)


@handles(StockRejected)
def order_reject_on_stock_rejected(event: StockRejected) -> None:
    services.order_reject(
        order_id=event.order_id,
        rejected_lines=[
            services.RejectedLineInfo(
                book_id=line.book_id, reason=line.reason, requested=line.requested, available=line.available
            )
            for line in event.lines
        ],
    )


def _customer_state_apply(event: CustomerRegistered | CustomerUpdated) -> None:
    services.customer_state_apply(
        customer_id=event.customer_id, email=event.email, name=event.name, as_of=occurred_at(event)
    )


@handles(CustomerRegistered)
def customer_state_apply_on_customer_registered(event: CustomerRegistered) -> None:
    _customer_state_apply(event)


@handles(CustomerUpdated)
def customer_state_apply_on_customer_updated(event: CustomerUpdated) -> None:
    _customer_state_apply(event)
