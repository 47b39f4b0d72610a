"""Which module handles which event: declared with :func:`handles` in ``<module>/handlers.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from messaging.conf import messaging_settings
from messaging.events import Event

Handler = Callable[[Event], None]


@dataclass(frozen=True)
class Subscription:
    module: str
    name: str
    event_class: type[Event]
    function: Handler

    @property
    def alias(self) -> str:
        return messaging_settings.alias_for(self.module)


_subscriptions: dict[str, Subscription] = {}


def handles(*event_classes: type[Event]) -> Callable[[Handler], Handler]:
    """Subscribe the decorated function to events of the given contract classes.

    The function runs inside a transaction on its own module's database, together
    with the inbox row that makes a second delivery of the same event a no-op.
    """

    def register(function: Handler) -> Handler:
        module = messaging_settings.module_of(function.__module__)
        if module is None:
            raise TypeError(f"{function.__module__}.{function.__qualname__} must live in a module's handlers.py")
        for event_class in event_classes:
            if not (isinstance(event_class, type) and issubclass(event_class, Event) and event_class.event_type):
                raise TypeError(f"@handles takes event contract classes, not {event_class!r}")
            name = f"{function.__module__}.{function.__qualname__}"
            if len(event_classes) > 1:
                name = f"{name}[{event_class.event_type}.v{event_class.event_version}]"
            _subscriptions[name] = Subscription(module, name, event_class, function)
        return function

    return register


def register(subscription: Subscription) -> None:
    """Add a subscription directly (tests and tools; modules use :func:`handles`)."""
    _subscriptions[subscription.name] = subscription


def unregister(name: str) -> None:
    _subscriptions.pop(name, None)


def subscriptions(modules: tuple[str, ...] | None = None) -> list[Subscription]:
    return [s for s in _subscriptions.values() if modules is None or s.module in modules]


def subscriptions_for(event_type: str, version: int, modules: tuple[str, ...]) -> list[Subscription]:
    """Handlers of one event version; another version of the same type is not theirs."""
    return [
        s
        for s in _subscriptions.values()
        if s.module in modules and s.event_class.event_type == event_type and s.event_class.event_version == version
    ]


def subscription(name: str) -> Subscription | None:
    return _subscriptions.get(name)


def subscribed_producers(module: str) -> set[str]:
    """The modules whose events ``module`` handles (the topics its consumer reads)."""
    return {s.event_class.producer() for s in _subscriptions.values() if s.module == module}
