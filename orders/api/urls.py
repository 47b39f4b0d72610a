from django.urls import path

from orders.api import views

urlpatterns = [
    path("", views.OrderListCreateView.as_view(), name="orders-order-list"),
    path("cart/", views.CartView.as_view(), name="orders-cart"),
    path("cart/items/", views.CartItemListView.as_view(), name="orders-cart-item-list"),
    path("cart/items/<int:book_id>/", views.CartItemDetailView.as_view(), name="orders-cart-item-detail"),
    path("<uuid:order_id>/", views.OrderDetailView.as_view(), name="orders-order-detail"),
    path("<uuid:order_id>/pay/", views.OrderPayView.as_view(), name="orders-order-pay"),
    path("<uuid:order_id>/cancel/", views.OrderCancelView.as_view(), name="orders-order-cancel"),
    path("<uuid:order_id>/ship/", views.OrderShipView.as_view(), name="orders-order-ship"),
]
