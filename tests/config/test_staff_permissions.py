"""accounts can grant every module's permissions, also when it serves accounts alone."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from config import staff_permissions

pytestmark = pytest.mark.django_db


def test_the_committed_permissions_are_the_modules_permissions():
    current = staff_permissions.current()
    assert {entry["app_label"] for entry in current} == {"accounts", "catalog", "orders", "recommendations"}
    assert staff_permissions.committed() == current, (
        "config/staff_permissions.json is stale: regenerate it with "
        '`python -c \'import django,os,json;os.environ.setdefault("DJANGO_SETTINGS_MODULE","config.settings");'
        "django.setup();from config import staff_permissions as s;"
        's.PERMISSIONS_FILE.write_text(json.dumps(s.current(),indent=1)+"\\n")\'`'
    )


def test_permissions_of_a_module_served_elsewhere_are_created_once():
    elsewhere = [{"app_label": "elsewhere", "model": "thing", "codename": "view_thing", "name": "Can view thing"}]

    assert staff_permissions.ensure(elsewhere) == 1
    assert staff_permissions.ensure(elsewhere) == 0
    permission = Permission.objects.get(codename="view_thing")
    assert permission.content_type == ContentType.objects.get(app_label="elsewhere", model="thing")


def test_permissions_of_a_served_module_are_left_to_its_own_migrate():
    served = [{"app_label": "catalog", "model": "book", "codename": "no_such_codename", "name": "x"}]
    assert staff_permissions.ensure(served) == 0
    assert not Permission.objects.filter(codename="no_such_codename").exists()


def test_the_file_is_json_a_person_can_review():
    text = staff_permissions.PERMISSIONS_FILE.read_text()
    assert json.loads(text) and text.endswith("\n")
