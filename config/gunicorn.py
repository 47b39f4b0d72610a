"""gunicorn's configuration (``--config=python:config.gunicorn``): Quire's log format, metrics per worker.

gunicorn configures logging before it loads the application, so it reads the same
``LOGGING`` dict the settings build; its access line names the request's correlation id.
"""

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
