"""orders' read queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Min, Prefetch, QuerySet
from django.utils import timezone

from orders.errors import CartItemNotFound, OrderNotFound
from orders.models import Cart, CartItem, Order, OrderLine, Product

LOW_STOCK = 5


@dataclass(frozen=True)
class CartLineView:
    book_id: int
    title: str
    quantity: int
    unit_price: Decimal | None
    currency: str
    line_total: Decimal | None
    available: int
    for_sale: bool
    notice: str
    added_at: datetime


@dataclass(frozen=True)
class CartView:
    customer_id: uuid.UUID
    items: list[CartLineView] = field(default_factory=list)
    updated_at: datetime | None = None

    @property
    def item_count(self) -> int:
        return sum(item.quantity for item in self.items)

    @property
    def currency(self) -> str | None:
        currencies = {item.currency for item in self.items if item.for_sale}
        return currencies.pop() if len(currencies) == 1 else None

    @property
    def total(self) -> Decimal:
        """What checkout would charge today: the current prices of the books still for sale."""
        return sum((item.line_total for item in self.items if item.for_sale), Decimal("0.00"))

    @property
    def can_check_out(self) -> bool:
        return bool(self.items) and all(item.for_sale for item in self.items) and self.currency is not None


def _notice(product: Product | None, quantity: int) -> str:
    if product is None or not product.is_known:
        return "This book is not for sale."
    if not product.for_sale:
        return "This book is no longer sold: remove it to check out."
    if product.available <= 0:
        return "Out of stock at the moment."
    if product.available < quantity:
        return f"Only {product.available} in stock."
    if product.available <= LOW_STOCK:
        return f"Only {product.available} left."
    return ""


def _line_view(item: CartItem, product: Product | None) -> CartLineView:
    known = product is not None and product.is_known
    return CartLineView(
        book_id=item.book_id,
        title=product.title if known else "",
        quantity=item.quantity,
        unit_price=product.price if known else None,
        currency=product.currency if known else "",
        line_total=product.price * item.quantity if known else None,
        available=product.available if product is not None else 0,
        for_sale=product is not None and product.for_sale,
        notice=_notice(product, item.quantity),
        added_at=item.added_at,
    )


def cart_get(*, customer_id: uuid.UUID) -> CartView:
    """The customer's cart with today's prices and availability from orders' product copy."""
    cart = Cart.objects.filter(customer_id=customer_id).first()
    if cart is None:
        return CartView(customer_id=customer_id)
    items = list(cart.items.all())
    products = Product.objects.in_bulk([item.book_id for item in items])
    return CartView(
        customer_id=customer_id,
        items=[_line_view(item, products.get(item.book_id)) for item in items],
        updated_at=cart.updated_at,
    )


def cart_item_get(*, customer_id: uuid.UUID, book_id: int) -> CartLineView:
    """One line of the cart; raises :class:`~orders.errors.CartItemNotFound`."""
    item = CartItem.objects.filter(cart__customer_id=customer_id, book_id=book_id).first()
    if item is None:
        raise CartItemNotFound(book_id)
    return _line_view(item, Product.objects.filter(book_id=book_id).first())


def product_get(*, book_id: int) -> Product | None:
    return Product.objects.filter(book_id=book_id).first()


def order_list(
    *,
    customer_id: uuid.UUID | None = None,
    state: str | None = None,
) -> QuerySet[Order]:
    """Orders newest first, optionally of one customer and in one state."""
    orders = Order.objects.prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if state:
        orders = orders.filter(state=state)
    return orders.order_by("-created_at", "-id")


def order_get(*, order_id: uuid.UUID, customer_id: uuid.UUID | None = None) -> Order:
    """One order (of that customer, if given); raises :class:`~orders.errors.OrderNotFound`."""
    order = order_list(customer_id=customer_id).filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(order_id)
    return order


def orders_pending_overdue(*, older_than: timedelta) -> QuerySet[Order]:
    """Orders still pending ``older_than`` after checkout (their saga has not settled), oldest first."""
    return Order.objects.filter(state=Order.State.PENDING, created_at__lt=timezone.now() - older_than).order_by(
        "created_at", "id"
    )


@dataclass(frozen=True)
class PendingSummary:
    overdue: int
    oldest_seconds: float  # 0 when no order is pending


def orders_pending_summary(*, older_than: timedelta) -> PendingSummary:
    """How many orders are overdue, and how long the oldest pending one has waited (for /metrics)."""
    oldest = Order.objects.filter(state=Order.State.PENDING).aggregate(oldest=Min("created_at"))["oldest"]
    age = max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
    return PendingSummary(overdue=orders_pending_overdue(older_than=older_than).count(), oldest_seconds=age)
