"""gunicorn's configuration (``--config=python:config.gunicorn``): Quire's log format, metrics per worker.

gunicorn configures logging before it loads the application, so it reads the same
``LOGGING`` dict the settings build; its access line names the request's correlation id.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings

logconfig_dict = settings.LOGGING
# The longest request line gunicorn accepts (its maximum; the default 4094 answered long filter
# queries with its own HTML 414); nginx's large_client_header_buffers default is 8k as well.
limit_request_line = 8190
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms corr=%({x-correlation-id}o)s'


def child_exit(server, worker) -> None:
    """A worker that exits leaves its live gauges behind in the multiprocess directory: drop them."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """Take what the worker built while loading Django out of the garbage collector's sweeps.

    Modules, the URLconf, models and serializer classes live as long as the worker; left tracked,
    every full collection walks them all again, a pause of tens of milliseconds that showed as the
    book list's p99 under gunicorn (docs/benchmarks.md). Frozen, a collection walks only what
    requests allocate. The same reasoning as CPython's ``gc.freeze`` documentation gives for forks.
    """
    gc.collect()
    gc.freeze()
