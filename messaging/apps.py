from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig
from django.conf import settings


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging (outbox, inbox, dead letters)"

    def ready(self) -> None:
        # Handlers register themselves on import; load those of every served module.
        for module in settings.SERVED_MODULES:
            if find_spec(f"{module}.handlers") is not None:
                import_module(f"{module}.handlers")
