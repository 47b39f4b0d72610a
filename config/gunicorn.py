"""gunicorn's configuration (``--config=python:config.gunicorn``): its logs in Quire's format.

gunicorn configures logging before it loads the application, so it reads the same
``LOGGING`` dict the settings build; its access line names the request's correlation id.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings

logconfig_dict = settings.LOGGING
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms corr=%({x-correlation-id}o)s'
