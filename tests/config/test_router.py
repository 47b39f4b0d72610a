"""The router keeps every module's tables in its own database."""

from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router

from config import topology
from messaging.models import MODULE_PROXIES, OutboxMessage

MODULE_ALIASES = [topology.alias_for_module(m) for m in topology.MODULES]


def module_models(module):
    return [model for model in apps.get_app_config(module).get_models() if not model._meta.proxy]


@pytest.mark.parametrize("module", topology.MODULES)
def test_each_module_model_reads_and_writes_on_its_own_database(module):
    for model in module_models(module):
        assert router.db_for_read(model) == module
        assert router.db_for_write(model) == module


def test_contrib_models_live_on_default():
    assert router.db_for_write(get_user_model()) == "default"


def test_messaging_proxies_go_to_their_modules_database():
    for module, proxies in MODULE_PROXIES.items():
        for proxy in proxies.values():
            assert router.db_for_write(proxy) == module


def test_a_relation_across_databases_is_refused():
    catalog_row = MODULE_PROXIES["catalog"]["outbox"]()
    orders_row = MODULE_PROXIES["orders"]["outbox"]()
    user = get_user_model()()

    assert router.allow_relation(catalog_row, orders_row) is False
    assert router.allow_relation(catalog_row, user) is False
    assert router.allow_relation(catalog_row, MODULE_PROXIES["catalog"]["inbox"]()) is True


@pytest.mark.parametrize("module", topology.MODULES)
def test_a_module_migrates_only_into_its_own_database(module):
    for alias in ["default", *MODULE_ALIASES]:
        assert router.allow_migrate(alias, module) is (alias == module), alias


def test_messaging_migrates_into_every_module_database_and_not_default():
    for alias in MODULE_ALIASES:
        assert router.allow_migrate(alias, "messaging") is True
    assert router.allow_migrate("default", "messaging") is False


def test_contrib_apps_migrate_into_every_database_so_any_can_become_a_process_default():
    for label in ("auth", "contenttypes", "admin", "sessions"):
        assert router.allow_migrate("default", label) is True
        for alias in MODULE_ALIASES:
            assert router.allow_migrate(alias, label) is True


@pytest.mark.django_db(databases=["default", *MODULE_ALIASES])
def test_tables_exist_only_where_they_belong():
    tables = {alias: set(connections[alias].introspection.table_names()) for alias in ["default", *MODULE_ALIASES]}
    outbox = OutboxMessage._meta.db_table
    assert outbox not in tables["default"]
    assert get_user_model()._meta.db_table in tables["default"]
    for module in topology.MODULES:
        assert outbox in tables[module]
        # contrib's tables are there, unused, for the day this database becomes a process's default
        assert get_user_model()._meta.db_table in tables[module]
        for model in module_models(module):
            owners = [alias for alias, names in tables.items() if model._meta.db_table in names]
            assert owners == [module], model


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_a_service_whose_default_shares_its_module_database_migrates_everything_there(settings):
    shared = {"ENGINE": "django.db.backends.postgresql", "NAME": "quire_catalog", "HOST": "127.0.0.1", "PORT": 5432}
    settings.DATABASES = {"default": dict(shared), "catalog": dict(shared)}
    settings.SERVED_MODULES = ("catalog",)

    assert router.allow_migrate("default", "catalog") is True
    assert router.allow_migrate("catalog", "auth") is True
    assert router.allow_migrate("default", "messaging") is True
    assert router.allow_migrate("catalog", "orders") is False


def test_a_messaging_model_used_without_a_database_says_what_to_pass():
    with pytest.raises(ImproperlyConfigured, match=r"OutboxMessage\.objects\.using\(<module alias>\)"):
        OutboxMessage.objects.count()


@pytest.mark.parametrize("module", topology.MODULES)
def test_each_module_router_alone_decides_where_its_models_go(module):
    routers = import_module(f"{module}.routers")
    router = getattr(routers, f"{module.capitalize()}Router")()
    models = list(apps.get_app_config(module).get_models())

    assert models, f"{module} declares no models"
    assert {router.db_for_read(model) for model in models} == {routers.DATABASE}
    assert {router.db_for_write(model) for model in models} == {routers.DATABASE}
    assert router.db_for_read(get_user_model()) is None  # not its model: the next router decides
    assert router.allow_migrate(routers.DATABASE, module) is True
    assert router.allow_migrate("default", module) is False
