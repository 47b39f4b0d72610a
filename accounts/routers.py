"""Where accounts's tables live: its own database, named by ``DATABASE``.

Model queries rely on this router (no ``.using()``); transactions and locks name
``DATABASE`` (``transaction.atomic(using=DATABASE)``).
"""

from messaging import ModuleRouter

DATABASE = "accounts"


class AccountsRouter(ModuleRouter):
    app_label = "accounts"
    database = DATABASE
