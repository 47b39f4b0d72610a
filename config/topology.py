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
    """The modules a process started with ``SERVICE=service`` serves, in the order of ``MODULES``.

    ``service`` is ``all``, one module, or a comma-separated set of modules (``accounts,catalog,orders``).
    """
    service = service.strip().lower()
    if service == ALL:
        return MODULES
    names = [name.strip() for name in service.split(",")]
    hint = f"set SERVICE to 'all', one of {', '.join(MODULES)}, or a comma-separated set of them"
    if not service or "" in names:
        raise ImproperlyConfigured(f"SERVICE={service!r} names an empty module: {hint} (e.g. accounts,catalog,orders).")
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        raise ImproperlyConfigured(
            f"SERVICE={service!r} names {', '.join(map(repr, unknown))}, not a module of Quire: {hint}."
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ImproperlyConfigured(
            f"SERVICE={service!r} names {', '.join(twice)} more than once: name each module once ({hint})."
        )
    return tuple(module for module in MODULES if module in names)


def service_name(modules: tuple[str, ...]) -> str:
    """The one name of a process serving ``modules``: ``all``, or the modules joined by ``+``.

    It names the process's admin (``/admin/<name>/`` when it is one module), its cookies, its
    log lines and metrics directory, the same for every spelling of the same set.
    """
    return ALL if modules == MODULES else "+".join(modules)


def check_transport(service: str, transport: str) -> str:
    transport = transport.strip().lower()
    if transport not in TRANSPORTS:
        raise ImproperlyConfigured(
            f"EVENT_TRANSPORT={transport!r} is unknown: set EVENT_TRANSPORT to 'inprocess' or 'kafka'."
        )
    if transport == "inprocess" and served_modules(service) != MODULES:
        raise ImproperlyConfigured(
            f"SERVICE={service} serves only some modules, so events must cross processes: "
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
