"""Which modules this process serves, and where each module's data lives.

The whole project reads the topology from here, so that nothing in a module needs
to know whether it runs in one process or as its own service.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

MODULES: tuple[str, ...] = ("accounts", "catalog", "orders", "recommendations")
ALL = "all"
TRANSPORTS: tuple[str, ...] = ("inprocess", "kafka")


def served_modules(service: str) -> tuple[str, ...]:
    """The modules a process started with ``SERVICE=service`` serves."""
    service = service.strip().lower()
    if service == ALL:
        return MODULES
    if service in MODULES:
        return (service,)
    raise ImproperlyConfigured(
        f"SERVICE={service!r} is not a module of Quire: set SERVICE to 'all' or one of {', '.join(MODULES)}."
    )


def check_transport(service: str, transport: str) -> str:
    transport = transport.strip().lower()
    if transport not in TRANSPORTS:
        raise ImproperlyConfigured(
            f"EVENT_TRANSPORT={transport!r} is unknown: set EVENT_TRANSPORT to 'inprocess' or 'kafka'."
        )
    if transport == "inprocess" and service != ALL:
        raise ImproperlyConfigured(
            f"SERVICE={service} runs one module alone, so its events must cross processes: "
            "set EVENT_TRANSPORT=kafka (and KAFKA_BOOTSTRAP_SERVERS), or use SERVICE=all."
        )
    return transport


def module_of(dotted_path: str) -> str | None:
    """The module that owns a dotted Python path or app label, if any."""
    head = dotted_path.split(".", 1)[0]
    return head if head in MODULES else None


def alias_for_module(module: str) -> str:
    """Each module's tables live in the database alias named after the module."""
    return module
