"""Every module's admin permissions, known to accounts even when it serves none of those modules.

accounts grants staff their permissions (web/staff.py), but a process serving accounts alone has
no catalog or orders models, so Django would have no Permission rows to grant. The shop's
permissions are committed in staff_permissions.json (kept current by tests/config/test_staff_permissions.py
from the one-process shop, where every module is installed), and after `migrate` each process adds
the rows of the modules it does not serve to its default database, where its staff users live.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.apps import apps as global_apps

from config import topology

PERMISSIONS_FILE = Path(__file__).with_name("staff_permissions.json")


def current() -> list[dict[str, str]]:
    """The permissions of every served module's models, in a stable order."""
    from django.contrib.auth.models import Permission

    return [
        {
            "app_label": permission.content_type.app_label,
            "model": permission.content_type.model,
            "codename": permission.codename,
            "name": permission.name,
        }
        for permission in Permission.objects.select_related("content_type")
        .filter(content_type__app_label__in=topology.MODULES)
        .order_by("content_type__app_label", "content_type__model", "codename")
    ]


def committed() -> list[dict[str, str]]:
    return json.loads(PERMISSIONS_FILE.read_text())


def ensure(entries: list[dict[str, str]], *, using: str = "default") -> int:
    """Add the rows of modules this process does not serve; returns how many were created."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    served = {config.label for config in global_apps.get_app_configs()}
    created = 0
    for entry in entries:
        if entry["app_label"] in served:
            continue  # its own app's migrate makes these, from the models themselves
        content_type, _ = ContentType.objects.db_manager(using).get_or_create(
            app_label=entry["app_label"], model=entry["model"]
        )
        _, made = Permission.objects.db_manager(using).get_or_create(
            content_type=content_type, codename=entry["codename"], defaults={"name": entry["name"]}
        )
        created += made
    return created


def add_other_modules_permissions(sender, using="default", **kwargs) -> None:
    """post_migrate: staff of this process may be given the other modules' permissions."""
    if using == "default":
        ensure(committed(), using=using)
