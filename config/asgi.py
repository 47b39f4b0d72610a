import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from messaging.transports import get_transport  # noqa: E402  (needs the app registry)

get_transport().on_process_start()
