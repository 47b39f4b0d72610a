"""Where catalog's tables live: its own database, named by ``DATABASE``.

Model queries rely on this router (no ``.using()``); transactions and locks name
``DATABASE`` (``transaction.atomic(using=DATABASE)``).
"""

from messaging import ModuleRouter

DATABASE = "catalog"


class CatalogRouter(ModuleRouter):
    app_label = "catalog"
    database = DATABASE
