"""Database backends: Django's, instrumented for /metrics by django-prometheus."""
