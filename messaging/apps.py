"""The messaging app: when Django is ready, wire the transport to publishing and load the handlers."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig

from messaging import transports
from messaging.conf import messaging_settings
from messaging.publishing import set_waker


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging (outbox, inbox, dead letters)"

    def ready(self) -> None:
        # A commit that published wakes the transport; publishing sits below the transports and
        # must not import them, so the hook is set here, once.
        set_waker(transports.wake)
        # Handlers register themselves on import; load those of every served module.
        for module in messaging_settings.served_modules:
            if find_spec(f"{module}.handlers") is not None:
                import_module(f"{module}.handlers")
