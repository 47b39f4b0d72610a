"""Where recommendations's tables live: its own database, named by ``DATABASE``.

Model queries rely on this router (no ``.using()``); transactions and locks name
``DATABASE`` (``transaction.atomic(using=DATABASE)``).
"""

from messaging import ModuleRouter

DATABASE = "recommendations"


class RecommendationsRouter(ModuleRouter):
    app_label = "recommendations"
    database = DATABASE
