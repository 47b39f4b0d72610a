from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    label = "orders"

    def ready(self) -> None:
        from orders.models import CustomerAccess
        from web.auth import customer_gate_register

        # Tokens of customers this module has seen deactivated or deleted are refused here.
        customer_gate_register(self.label, CustomerAccess.refused)
