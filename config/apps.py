from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project itself, as an app: for project-wide commands (migrate, seed_demo, run_service)."""

    name = "config"
    label = "config"
    verbose_name = "Quire"

    def ready(self) -> None:
        from django.apps import apps
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from config.staff_permissions import add_other_modules_permissions

        # Staff here may be given the permissions of modules served elsewhere. Sent with auth's
        # post_migrate (this app has no models, so Django sends none for it): once per migrate.
        post_migrate.connect(
            add_other_modules_permissions, sender=apps.get_app_config("auth"), dispatch_uid="quire-staff-permissions"
        )

        if settings.LOG_FORMAT == "json":
            from config import logs

            logs.route_uncaught_to_logging()
        # Here, not in settings: gunicorn forks its workers before loading the application, and
        # the exporter's thread must start in the process that records the spans.
        if settings.OTEL_ENABLED:
            from config import tracing

            tracing.install(service_name=settings.OTEL_SERVICE_NAME)
