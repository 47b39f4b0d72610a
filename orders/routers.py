"""Where orders's tables live: its own database, named by ``DATABASE``.

Model queries rely on this router (no ``.using()``); transactions and locks name
``DATABASE`` (``transaction.atomic(using=DATABASE)``).
"""

from messaging import ModuleRouter

DATABASE = "orders"


class OrdersRouter(ModuleRouter):
    app_label = "orders"
    database = DATABASE
