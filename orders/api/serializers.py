from __future__ import annotations

from collections.abc import Mapping

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from orders import payments
from orders.holds import CANCELLED_BY_CUSTOMER, PAYMENT_TIMEOUT
from orders.models import MAX_LINE_QUANTITY, Order, OrderLine
from orders.services import MAX_ORDER_LINES
from web.limits import BIGINT_MAX

#: Fields a client might try to set but that only the server decides.
SERVER_OWNED = {"id", "price", "unit_price", "total", "line_total", "state", "customer_id", "currency", "status"}
#: Sent by HTML forms of the browsable API, not by the client's intent.
FORM_NOISE = {"csrfmiddlewaretoken"}


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare instead of silently dropping them (no mass assignment)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - FORM_NOISE)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            ErrorDetail(
                                "Set by the server; a client may not send it."
                                if name in SERVER_OWNED
                                else "Unknown field.",
                                code="not_allowed",
                            )
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


# --- cart -------------------------------------------------------------------------------


class CartItemAddSerializer(StrictSerializer):
    book_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY, default=1)


class CartItemQuantitySerializer(StrictSerializer):
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class CartLineSerializer(serializers.Serializer):
    book_id = serializers.IntegerField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    available = serializers.IntegerField()
    for_sale = serializers.BooleanField()
    notice = serializers.CharField(help_text="Why the line needs attention (withdrawn, low stock), or empty.")
    added_at = serializers.DateTimeField()


class CartSerializer(serializers.Serializer):
    customer_id = serializers.UUIDField()
    items = CartLineSerializer(many=True)
    item_count = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField(allow_null=True)
    can_check_out = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


# --- checkout -----------------------------------------------------------------------------


class CheckoutLineSerializer(StrictSerializer):
    book_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class CheckoutSerializer(StrictSerializer):
    """Empty body: check out the cart. ``lines``: buy exactly these (the cart stays as it is)."""

    lines = CheckoutLineSerializer(many=True, required=False, min_length=1, max_length=MAX_ORDER_LINES)

    def validate_lines(self, lines):
        seen = set()
        errors = []
        for line in lines:
            duplicate = line["book_id"] in seen
            seen.add(line["book_id"])
            errors.append({"book_id": ["Send one line per book."]} if duplicate else {})
        if any(errors):
            raise serializers.ValidationError(errors)
        return lines


# --- orders -----------------------------------------------------------------------------

REASON_TEXT = {
    "out_of_stock": "Out of stock.",
    "insufficient_stock": "Not enough copies in stock.",
    "unknown_book": "This book is not in the catalog.",
    "withdrawn": "This book is no longer sold.",
    "not_confirmed_in_time": "The shop could not confirm this book's stock in time; nothing was charged or held.",
}


CANCELLATION_TEXT = {
    CANCELLED_BY_CUSTOMER: "You cancelled this order.",
    PAYMENT_TIMEOUT: "Not paid in time: the order was cancelled and its copies went back on sale.",
}


class OrderLineSerializer(serializers.ModelSerializer):
    rejection = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = ["book_id", "title", "quantity", "unit_price", "line_total", "rejection"]
        read_only_fields = fields

    def get_rejection(self, line: OrderLine) -> dict | None:
        if not line.rejection_reason:
            return None
        return {
            "reason": line.rejection_reason,
            "message": REASON_TEXT.get(line.rejection_reason, line.rejection_reason),
            "requested": line.quantity,
            "available": line.rejection_available,
        }


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    item_count = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField(help_text="What the customer may do next with this order.")
    url = serializers.SerializerMethodField()
    payment_due_at = serializers.DateTimeField(
        read_only=True, help_text="A confirmed order not paid by then is cancelled and its copies released."
    )
    cancellation = serializers.SerializerMethodField(help_text="Why a cancelled order was cancelled, else null.")

    class Meta:
        model = Order
        fields = [
            "id",
            "url",
            "state",
            "customer_id",
            "currency",
            "total",
            "item_count",
            "lines",
            "actions",
            "created_at",
            "confirmed_at",
            "rejected_at",
            "paid_at",
            "shipped_at",
            "cancelled_at",
            "payment_due_at",
            "cancellation",
            "payment_reference",
        ]
        read_only_fields = fields

    def get_item_count(self, order: Order) -> int:
        return sum(line.quantity for line in order.lines.all())

    def get_actions(self, order: Order) -> list[str]:
        return {
            Order.State.PENDING: ["cancel"],
            Order.State.CONFIRMED: ["pay", "cancel"],
        }.get(order.state, [])

    def get_cancellation(self, order: Order) -> dict | None:
        if order.state != Order.State.CANCELLED:
            return None
        reason = order.cancellation_reason or CANCELLED_BY_CUSTOMER
        return {"reason": reason, "message": CANCELLATION_TEXT.get(reason, reason)}

    def get_url(self, order: Order) -> str:
        path = f"/api/orders/{order.id}/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


# --- payment ------------------------------------------------------------------------------


class CardPaymentSerializer(StrictSerializer):
    """A card-like payload for the simulated gateway (see docs/orders.md for the decline rule)."""

    card_number = serializers.CharField(max_length=40, help_text="12 to 19 digits; spaces and dashes are ignored.")
    expiry = serializers.CharField(max_length=7, help_text="MM/YY, not in the past.")
    cvc = serializers.CharField(max_length=4, min_length=3)
    cardholder_name = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_card_number(self, value: str) -> str:
        number = payments.normalize_card_number(value)
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise serializers.ValidationError("A card number has 12 to 19 digits.")
        if not payments.luhn_valid(number):
            raise serializers.ValidationError("This card number is not valid (its check digit is wrong).")
        return number

    def validate_expiry(self, value: str) -> tuple[int, int]:
        parsed = payments.parse_expiry(value)
        if parsed is None:
            raise serializers.ValidationError("Use MM/YY, e.g. 04/29.")
        if payments.is_expired(*parsed, today=timezone.localdate()):
            raise serializers.ValidationError("This card has expired.")
        return parsed

    def validate_cvc(self, value: str) -> str:
        if not value.isdigit():
            raise serializers.ValidationError("The security code is 3 or 4 digits.")
        return value

    def to_card(self) -> payments.Card:
        data = self.validated_data
        month, year = data["expiry"]
        return payments.Card(number=data["card_number"], exp_month=month, exp_year=year, cvc=data["cvc"])
