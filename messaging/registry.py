"""Which module handles which event: declared with :func:`handles` in ``<module>/handlers.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from messaging.conf import messaging_settings
from messaging.events import Event

Handler = Callable[[Event], None]
BatchHandler = Callable[[list[Event]], None]


@dataclass(frozen=True)
class Subscription:
    module: str
    name: str
    event_class: type[Event]
    function: Handler
    #: The handler's bulk form (:func:`handles_batch`), if it declares one.
    batch_function: BatchHandler | None = None

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


def handles_batch(handler: Handler) -> Callable[[BatchHandler], BatchHandler]:
    """Declare the bulk form of ``handler`` (a function already decorated with :func:`handles`).

    Delivery may then call it with several of the handler's events at once, in their order, in
    one transaction with their inbox rows: it must have the same effect as calling ``handler``
    on each in turn. If it raises, the events are applied one by one with ``handler`` instead,
    so a failing event is found, retried and dead-lettered alone.
    """

    def register_batch(batch_function: BatchHandler) -> BatchHandler:
        names = [name for name, s in _subscriptions.items() if s.function is handler]
        if not names:
            raise TypeError(f"@handles_batch({handler.__qualname__}): decorate it with @handles first")
        for name in names:
            _subscriptions[name] = replace(_subscriptions[name], batch_function=batch_function)
        return batch_function

    return register_batch


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
