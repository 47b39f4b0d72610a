"""The router of what neither a module nor messaging owns: Django's contrib apps, on ``default``.

Their tables are also created in every module database, though nothing reads them there: Django
records a migration as applied on every alias it runs for, even where the router refuses it, so a
module database migrated by a process whose ``default`` was elsewhere would claim contrib's tables
without having them. With them everywhere, any module's database can become a process's ``default``
when the module moves (docs/operations.md, "Move a module out (and back)").

Each module routes its own models (``<module>/routers.py``) and ``messaging.routing.MessagingRouter``
the outbox, inbox and dead letters; ``DATABASE_ROUTERS`` lists those of the served modules, then
those two, then this one.
"""

from __future__ import annotations

from config import topology
from messaging.routing import MESSAGING_APP, same_database


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
        return same_database(db, "default") or topology.module_of(db) is not None
