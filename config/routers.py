"""The routers of what no module owns: the messaging tables and Django's contrib apps.

Each module routes its own models (``<module>/routers.py``); ``DATABASE_ROUTERS`` lists
those of the served modules first, then these two:

- messaging tables (outbox, inbox, dead letters) migrate into every served module's
  database, because an event is written in the transaction of the change it describes;
  code that touches them names the alias with ``using`` (the admin's per-module proxies
  carry theirs);
- contrib apps (auth, contenttypes, admin, sessions) live on ``default``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config import topology
from messaging.routing import same_database

MESSAGING_APP = "messaging"


class MessagingRouter:
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
        raise ImproperlyConfigured(
            f"{model.__name__} lives in every module's database, so a query must say which: "
            f"use {model.__name__}.objects.using(<module alias>), e.g. using({settings.SERVED_MODULES[0]!r})."
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
        return any(same_database(db, topology.alias_for_module(m)) for m in settings.SERVED_MODULES)


class ContribRouter:
    """Everything no module and not messaging owns lives on ``default``."""

    def db_for_read(self, model, **hints):
        return None if model._meta.app_label == MESSAGING_APP else "default"

    def db_for_write(self, model, **hints):
        return None if model._meta.app_label == MESSAGING_APP else "default"

    def allow_relation(self, obj1, obj2, **hints):
        return (obj1._state.db or "default") == (obj2._state.db or "default")

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == MESSAGING_APP or topology.module_of(app_label):
            return False
        return same_database(db, "default")
