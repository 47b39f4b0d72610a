"""The one rule of where a module's tables live, as a base for each module's own router.

Every module declares ``<module>/routers.py``: ``DATABASE`` (its alias) and a small subclass of
:class:`ModuleRouter`. ``DATABASE_ROUTERS`` lists the routers of the modules a process serves,
so each module alone decides where its models go; it may later send its own reads elsewhere
(a replica) without touching the others.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings

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
