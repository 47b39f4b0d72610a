from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project itself, as an app: for project-wide commands (migrate, seed_demo, run_service)."""

    name = "config"
    label = "config"
    verbose_name = "Quire"
