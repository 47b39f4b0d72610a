"""Every model of every module, and each module's outbox, inbox and dead letters, is in the admin."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client

from config import topology
from messaging.models import MODULE_PROXIES

ALL_DATABASES = ["default", *topology.MODULES]


@pytest.mark.parametrize("module", topology.MODULES)
def test_every_module_model_is_registered_with_a_useful_list(module):
    inlined = {inline.model for model_admin in admin.site._registry.values() for inline in model_admin.inlines}
    for model in apps.get_app_config(module).get_models():
        if model in inlined and not admin.site.is_registered(model):
            continue  # edited within its parent, e.g. a cart's items
        assert admin.site.is_registered(model), f"{model.__name__} has no admin"
        model_admin = admin.site._registry[model]
        assert model_admin.list_display != ("__str__",), f"{model.__name__} admin shows only __str__"


def test_each_modules_messaging_tables_are_registered():
    for proxies in MODULE_PROXIES.values():
        for proxy in proxies.values():
            assert admin.site.is_registered(proxy)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_every_admin_list_page_opens():
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(staff)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url)
        assert response.status_code == 200, url
