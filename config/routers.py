"""Send every model to its module's database, and keep modules from touching each other's.

- a module's models read, write and migrate only on the alias named after the module;
- messaging tables (outbox, inbox, dead letters) migrate into every module alias,
  because an event is written in the transaction of the change it describes; code
  that touches them names the alias with ``using``;
- contrib apps live on ``default``;
- a relation between two aliases is refused.

A service's ``default`` may point at the same physical database as its module
(one PostgreSQL database per service). Migrations are then allowed on both aliases,
because Django's migration history is one table per physical database.
"""

from __future__ import annotations

from django.conf import settings

from config import topology
from config.databases import same_database

MESSAGING_APP = "messaging"


def alias_for_app(app_label: str) -> str | None:
    module = topology.module_of(app_label)
    if module is not None:
        return topology.alias_for_module(module)
    if app_label == MESSAGING_APP:
        return None
    return "default"


def _alias_for_model(model) -> str | None:
    module_alias = getattr(model, "module_alias", None)  # messaging's per-module proxies
    if module_alias:
        return module_alias
    return alias_for_app(model._meta.app_label)


def _physically_same(first: str, second: str) -> bool:
    databases = settings.DATABASES
    return first == second or (
        first in databases and second in databases and same_database(databases[first], databases[second])
    )


class ModuleRouter:
    def db_for_read(self, model, **hints):
        return _alias_for_model(model) or _instance_alias(hints)

    def db_for_write(self, model, **hints):
        return _alias_for_model(model) or _instance_alias(hints)

    def allow_relation(self, obj1, obj2, **hints):
        first = obj1._state.db or _alias_for_model(type(obj1))
        second = obj2._state.db or _alias_for_model(type(obj2))
        if first is None or second is None:
            return None
        return first == second

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == MESSAGING_APP:
            return any(_physically_same(db, topology.alias_for_module(m)) for m in settings.SERVED_MODULES)
        target = alias_for_app(app_label)
        return _physically_same(db, target)


def _instance_alias(hints) -> str | None:
    instance = hints.get("instance")
    return instance._state.db if instance is not None else None
