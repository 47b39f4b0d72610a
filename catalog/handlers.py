"""catalog's side of the checkout saga: it holds, releases and sells stock as orders move.

Every handler runs in a transaction on the catalog database together with its inbox row,
so a second delivery of the same event does nothing; the reservation record per order
makes them idempotent against a re-sent event too, and lets events of one order arrive
in any order (a cancellation before the order itself reserves nothing later).
"""

from __future__ import annotations

from catalog import services
from messaging import handles
from orders.contracts import OrderCancelled, OrderPlaced, OrderShipped


@handles(OrderPlaced)
def stock_reserve_on_order_placed(event: OrderPlaced) -> None:
    services.stock_reserve(order_id=event.order_id, lines=[(line.book_id, line.quantity) for line in event.lines])


@handles(OrderCancelled)
def stock_release_on_order_cancelled(event: OrderCancelled) -> None:
    # Released whether or not orders saw the order confirmed: a customer may cancel while the
    # order is pending and our StockReserved is still on its way, and the copies must come back
    # then too. Without a reservation this records the cancellation for a late OrderPlaced.
    services.stock_release(order_id=event.order_id)


@handles(OrderShipped)
def stock_sell_on_order_shipped(event: OrderShipped) -> None:
    services.stock_sell(order_id=event.order_id)
