"""The WSGI application bench_book_list.py serves with gunicorn: Quire's, plus the bare comparator views.

gunicorn imports ``bench.book_list_server:application`` in its worker; the benchmark has set the
environment (throwaway databases, production settings) and written the SQL statements the API
issued for each path to ``BENCH_BARE_STATEMENTS`` (JSON: name -> [[sql, params], ...]). Each
``/bench-bare/<name>/`` view replays those statements on a raw cursor and returns their rows with
``JsonResponse``: Django's request cycle and the database, without DRF, the ORM, the selector,
the pagination and the serializer.
"""

from __future__ import annotations

import json
import os

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from bare import bare_view  # noqa: E402  (bench/ is on the path: gunicorn --pythonpath bench)
from django.urls import clear_url_caches, path  # noqa: E402  (after Django is set up)

import config.urls  # noqa: E402

with open(os.environ["BENCH_BARE_STATEMENTS"]) as file:
    recorded = json.load(file)
config.urls.urlpatterns[:0] = [
    path(f"bench-bare/{name}/", bare_view([(sql, tuple(params)) for sql, params in statements]))
    for name, statements in recorded.items()
]
clear_url_caches()
