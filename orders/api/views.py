"""orders' HTTP API: thin views over services and selectors."""

from __future__ import annotations

import hashlib
import json
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.api.serializers import (
    CardPaymentSerializer,
    CartItemAddSerializer,
    CartItemQuantitySerializer,
    CartLineSerializer,
    CartSerializer,
    CheckoutSerializer,
    OrderSerializer,
)
from orders.errors import IDEMPOTENCY_HEADER
from orders.models import CartItem, Order
from web.auth import IsCustomer, IsStaff, customer_id_of, is_customer
from web.problems import problem_response
from web.throttling import AddressFailureThrottle, CustomerFailureThrottle, WritesThrottled, failures_record

# The draft makes the value a structured-field string ("..."); a bare token is accepted too.
_KEY = re.compile(r'^"?([\x21\x23-\x7e]{1,255})"?$')
PROBLEM = OpenApiResponse(description="Problem details (RFC 9457)")


class IsCustomerOrStaff(BasePermission):
    message = "Sign in as a customer (Authorization: Bearer <access token>) or as staff."

    def has_permission(self, request, view) -> bool:
        return IsCustomer().has_permission(request, view) or IsStaff().has_permission(request, view)


# --- cart --------------------------------------------------------------------------------


def cart_response(request, *, status_code: int = status.HTTP_200_OK) -> Response:
    cart = selectors.cart_get(customer_id=customer_id_of(request))
    return Response(CartSerializer(cart).data, status=status_code)


class CartView(WritesThrottled, GenericAPIView):
    """The signed-in customer's cart, priced with today's prices."""

    throttle_scope = "cart"
    permission_classes = [IsCustomer]
    serializer_class = CartSerializer

    def get(self, request):
        return cart_response(request)

    @extend_schema(responses={204: None})
    def delete(self, request):
        services.cart_clear(customer_id=customer_id_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CartItemListView(WritesThrottled, GenericAPIView):
    """Lines of the cart; POST adds copies of a book (to any already there)."""

    throttle_scope = "cart"
    permission_classes = [IsCustomer]
    serializer_class = CartItemAddSerializer
    queryset = CartItem.objects.none()  # for the schema only: reads go through selectors
    pagination_class = None  # a cart is small: all its lines at once

    @extend_schema(responses=CartLineSerializer(many=True))
    def get(self, request):
        cart = selectors.cart_get(customer_id=customer_id_of(request))
        return Response(CartLineSerializer(cart.items, many=True).data)

    @extend_schema(request=CartItemAddSerializer, responses={200: CartSerializer, 201: CartSerializer, 400: PROBLEM})
    def post(self, request):
        serializer = CartItemAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _, created = services.cart_item_add(customer_id=customer_id_of(request), **serializer.validated_data)
        return cart_response(request, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CartItemDetailView(WritesThrottled, GenericAPIView):
    """One book in the cart: read it, set its quantity, or remove it."""

    throttle_scope = "cart"
    permission_classes = [IsCustomer]
    serializer_class = CartItemQuantitySerializer

    @extend_schema(responses={200: CartLineSerializer, 404: PROBLEM})
    def get(self, request, book_id: int):
        line = selectors.cart_item_get(customer_id=customer_id_of(request), book_id=book_id)
        return Response(CartLineSerializer(line).data)

    @extend_schema(request=CartItemQuantitySerializer, responses={200: CartSerializer, 400: PROBLEM, 404: PROBLEM})
    def patch(self, request, book_id: int):
        serializer = CartItemQuantitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.cart_item_quantity_set(
            customer_id=customer_id_of(request), book_id=book_id, quantity=serializer.validated_data["quantity"]
        )
        return cart_response(request)

    put = patch

    @extend_schema(responses={204: None, 404: PROBLEM})
    def delete(self, request, book_id: int):
        services.cart_item_remove(customer_id=customer_id_of(request), book_id=book_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- orders ------------------------------------------------------------------------------


def idempotency_key_of(request) -> str:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None or not raw.strip():
        raise serializers.ValidationError(
            {IDEMPOTENCY_HEADER: [f"Send an {IDEMPOTENCY_HEADER} header (e.g. a UUID) so a retry cannot order twice."]}
        )
    match = _KEY.match(raw.strip())
    if match is None:
        raise serializers.ValidationError(
            {IDEMPOTENCY_HEADER: ["Use 1 to 255 printable ASCII characters without quotes or spaces."]}
        )
    return match.group(1)


def fingerprint_of(request, validated_data) -> str:
    """What makes two checkout requests "the same": method, path and the (canonical) body."""
    canonical = json.dumps(validated_data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


class OrderListCreateView(WritesThrottled, GenericAPIView):
    """GET: your orders, newest first (staff: everyone's). POST: check out (needs an Idempotency-Key)."""

    throttle_scope = "checkout"
    serializer_class = OrderSerializer
    queryset = Order.objects.none()  # for the schema only: reads go through selectors

    def get_permissions(self):
        return [IsCustomer()] if self.request.method == "POST" else [IsCustomerOrStaff()]

    @extend_schema(
        parameters=[OpenApiParameter("state", OpenApiTypes.STR, enum=[s.value for s in Order.State])],
        responses=OrderSerializer(many=True),
    )
    def get(self, request):
        state = request.query_params.get("state") or None
        if state is not None and state not in Order.State.values:
            raise serializers.ValidationError({"state": [f"Choose one of: {', '.join(Order.State.values)}."]})
        customer_id = customer_id_of(request) if is_customer(request.user) else None
        orders = selectors.order_list(customer_id=customer_id, state=state)
        page = self.paginate_queryset(orders)
        return self.get_paginated_response(OrderSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        request=CheckoutSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Unique per checkout attempt; a retry with the same key and body replays the response.",
            )
        ],
        responses={201: OrderSerializer, 400: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    def post(self, request):
        customer_id = customer_id_of(request)
        key = idempotency_key_of(request)
        serializer = CheckoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = serializer.validated_data.get("lines")
        line_requests = (
            None
            if lines is None
            else [services.LineRequest(book_id=line["book_id"], quantity=line["quantity"]) for line in lines]
        )

        def respond(order: Order):
            order = selectors.order_get(order_id=order.id)
            return status.HTTP_201_CREATED, OrderSerializer(order, context={"request": request}).data

        result = services.order_place_idempotently(
            customer_id=customer_id,
            key=key,
            fingerprint=fingerprint_of(request, serializer.validated_data),
            lines=line_requests,
            respond=respond,
        )
        headers = {"Location": f"/api/orders/{result.order_id}/"} if result.order_id else {}
        if result.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(result.body, status=result.status, headers=headers)


class OrderDetailView(GenericAPIView):
    """One of your orders (staff: any order). Another customer's order does not exist for you."""

    permission_classes = [IsCustomerOrStaff]
    serializer_class = OrderSerializer

    @extend_schema(responses={200: OrderSerializer, 404: PROBLEM})
    def get(self, request, order_id):
        customer_id = customer_id_of(request) if is_customer(request.user) else None
        order = selectors.order_get(order_id=order_id, customer_id=customer_id)
        return Response(OrderSerializer(order, context={"request": request}).data)


def order_response(request, order_id) -> Response:
    order = selectors.order_get(order_id=order_id)
    return Response(OrderSerializer(order, context={"request": request}).data)


class OrderPayView(GenericAPIView):
    """Pay a confirmed order with a card (simulated: a number ending in 0002 is declined)."""

    # Card testing: a stolen card list tried against one's own order. Declines are counted per customer
    # and per address; past the limit a payment is refused before any card is charged.
    throttle_scope = "payment_declined"
    throttle_classes = [CustomerFailureThrottle, AddressFailureThrottle]
    permission_classes = [IsCustomer]
    serializer_class = CardPaymentSerializer

    @extend_schema(
        request=CardPaymentSerializer,
        responses={200: OrderSerializer, 400: PROBLEM, 402: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, order_id):
        serializer = CardPaymentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attempt = services.order_pay(order_id=order_id, customer_id=customer_id_of(request), card=serializer.to_card())
        if attempt.outcome != attempt.Outcome.APPROVED:
            failures_record(self, request)
            return problem_response(
                status.HTTP_402_PAYMENT_REQUIRED,
                "The card was declined; the order stays confirmed, so you may pay with another card.",
                request=request,
                code=attempt.decline_code,
            )
        return order_response(request, order_id)


class OrderCancelView(APIView):
    """Cancel your pending or confirmed order; reserved stock goes back to the shelf."""

    permission_classes = [IsCustomer]

    @extend_schema(request=None, responses={200: OrderSerializer, 404: PROBLEM, 409: PROBLEM})
    def post(self, request, order_id):
        services.order_cancel(order_id=order_id, customer_id=customer_id_of(request))
        return order_response(request, order_id)


class OrderShipView(APIView):
    """Staff: hand a paid order to the carrier."""

    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: OrderSerializer, 404: PROBLEM, 409: PROBLEM})
    def post(self, request, order_id):
        services.order_ship(order_id=order_id)
        return order_response(request, order_id)
