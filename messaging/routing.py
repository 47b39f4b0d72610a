"""Where tables live: the base of each module's own router, and the router of the messaging tables.

Every module declares ``<module>/routers.py``: ``DATABASE`` (its alias) and a small subclass of
:class:`ModuleRouter`. ``DATABASE_ROUTERS`` lists the routers of the modules a process serves,
so each module alone decides where its models go; it may later send its own reads elsewhere
(a replica) without touching the others. Then comes :class:`MessagingRouter`: the outbox, inbox
and dead letters migrate into every served module's database, because an event is written in
the transaction of the change it describes; code that touches them names the alias with
``using`` (the admin's per-module proxies carry theirs).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from messaging.conf import messaging_settings

#: What makes two aliases one physical database (a service's default and its module's).
_SAME_DATABASE_KEYS = ("ENGINE", "NAME", "HOST", "PORT")


def same_database(first: str, second: str) -> bool:
    """Whether two aliases point at one physical database (or are the same alias)."""
    databases = settings.DATABASES
    if first == second:
        return True
    if first not in databases or second not in databases:
        return False
    return all(str(databases[first].get(key, "")) == str(databases[second].get(key, "")) for key in _SAME_DATABASE_KEYS)


class ModuleRouter:
    """Send one module's models to its database, and nowhere else.

    - reads and writes of the module's models go to ``database``;
    - the module's app migrates only there (and into an alias that is the same physical
      database: Django keeps one migration history per physical database);
    - a relation between one of the module's objects and an object of another module (or
      another database) is refused: modules hold plain ids, never foreign keys.

    For any other app it has no opinion (``None``), so the next router decides.
    """

    app_label: ClassVar[str]
    database: ClassVar[str]

    def _owns(self, model) -> bool:
        return model._meta.app_label == self.app_label

    def db_for_read(self, model, **hints):
        return self.database if self._owns(model) else None

    def db_for_write(self, model, **hints):
        return self.database if self._owns(model) else None

    def allow_relation(self, obj1, obj2, **hints):
        owned = (self._owns(type(obj1)), self._owns(type(obj2)))
        if not any(owned):
            return None
        return all(owned) and (obj1._state.db or self.database) == (obj2._state.db or self.database)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label != self.app_label:
            return None
        return same_database(db, self.database)


MESSAGING_APP = "messaging"


class MessagingRouter:
    """Send the messaging tables to the database the caller names; refuse to guess."""

    def _alias(self, model, hints) -> str | None:
        if model._meta.app_label != MESSAGING_APP:
            return None
        module_alias = getattr(model, "module_alias", None)  # the admin's per-module proxies
        if module_alias:
            return module_alias
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        # Falling back to ``default`` would write an event where no relay looks for it.
        example = messaging_settings.served_modules[0]
        raise ImproperlyConfigured(
            f"{model.__name__} lives in every module's database, so a query must say which: "
            f"use {model.__name__}.objects.using(<module alias>), e.g. using({example!r})."
        )

    def db_for_read(self, model, **hints):
        return self._alias(model, hints)

    def db_for_write(self, model, **hints):
        return self._alias(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        if MESSAGING_APP not in (obj1._meta.app_label, obj2._meta.app_label):
            return None
        first = obj1._state.db or getattr(obj1, "module_alias", None)
        second = obj2._state.db or getattr(obj2, "module_alias", None)
        return first is not None and first == second

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label != MESSAGING_APP:
            return None
        return any(same_database(db, messaging_settings.alias_for(m)) for m in messaging_settings.served_modules)
