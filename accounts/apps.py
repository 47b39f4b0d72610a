from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"

    def ready(self) -> None:
        from accounts.selectors import customer_refused
        from web.auth import customer_gate_register

        # accounts owns the record, so it refuses a deactivated or deleted customer's token at once.
        customer_gate_register(self.label, customer_refused)
