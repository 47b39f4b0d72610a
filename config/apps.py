from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project itself, as an app: for project-wide commands (migrate, seed_demo, run_service)."""

    name = "config"
    label = "config"
    verbose_name = "Quire"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from config.staff_permissions import add_other_modules_permissions

        # After every app's own permissions: staff here may be given those of modules served elsewhere.
        post_migrate.connect(add_other_modules_permissions, sender=self)

        if settings.LOG_FORMAT == "json":
            from config import logs

            logs.route_uncaught_to_logging()
        # Here, not in settings: gunicorn forks its workers before loading the application, and
        # the exporter's thread must start in the process that records the spans.
        if settings.OTEL_ENABLED:
            from config import tracing

            tracing.install(service_name=settings.OTEL_SERVICE_NAME)
