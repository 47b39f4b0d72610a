"""The subscriptions read from each handlers.py are exactly those the registry holds when every handler is loaded."""

from __future__ import annotations

from django.conf import settings

from config import contracts, topology
from messaging.registry import subscriptions as registered


def test_reading_handlers_py_finds_what_importing_it_registers():
    assert settings.SERVED_MODULES == topology.MODULES  # this process imported every module's handlers
    from_registry = sorted(
        contracts.Subscription(s.event_class.event_type, s.event_class.event_version, s.module, s.name)
        for s in registered()
        if s.function.__module__ == f"{s.module}.handlers"  # not a test's probe handler
    )

    assert contracts.subscriptions() == from_registry
    assert len(from_registry) >= 16


def test_every_contract_is_declared_by_its_producer_and_named_after_it():
    events = contracts.contracts()

    assert {cls.producer() for cls in events} == {"accounts", "catalog", "orders"}
    assert all(cls.__module__ == f"{cls.producer()}.contracts" for cls in events)
    assert contracts.consumers_of(next(c for c in events if c.event_type == "orders.OrderConfirmed")) == [
        "recommendations"
    ]
