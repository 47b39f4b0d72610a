"""lint-imports really fails when a module reaches into another module's internals."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import topology

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def project_copy(tmp_path):
    for package in ("config", "web", "messaging", *topology.MODULES):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_project_keeps_its_boundaries(project_copy):
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("importer", "statement", "reported"),
    [
        ("orders/boundary_probe.py", "import catalog.apps\n", "orders.boundary_probe -> catalog.apps"),
        ("catalog/boundary_probe.py", "from accounts.api import urls\n", "catalog.boundary_probe -> accounts.api.urls"),
        ("messaging/boundary_probe.py", "import orders.contracts\n", "messaging.boundary_probe -> orders.contracts"),
        ("web/boundary_probe.py", "import config.settings\n", "web.boundary_probe -> config.settings"),
        ("web/boundary_probe.py", "from catalog import services\n", "web.boundary_probe -> catalog.services"),
    ],
)
def test_an_import_of_another_modules_internals_fails(project_copy, importer, statement, reported):
    (project_copy / importer).write_text(statement)

    result = lint_imports(project_copy)

    assert result.returncode != 0
    assert reported in result.stdout


@pytest.mark.parametrize(
    ("importer", "statement", "reported"),
    [
        # messaging never imports the composition root
        ("messaging/boundary_probe.py", "from config import topology\n", "messaging.boundary_probe -> config.topology"),
        # layers inside messaging: no layer imports one above it (function-level imports count too)
        ("messaging/delivery.py", "import messaging.kafka.relay\n", "messaging.delivery -> messaging.kafka.relay"),
        (
            "messaging/publishing.py",
            "def _wake():\n    from messaging.transports import get_transport\n",
            "messaging.publishing -> messaging.transports",
        ),
        (
            "messaging/transports/__init__.py",
            "import messaging.kafka.transport\n",
            "messaging.transports -> messaging.kafka",
        ),
        ("messaging/envelope.py", "import messaging.models\n", "messaging.envelope -> messaging.models"),
        # modules use messaging only through its facade
        (
            "orders/boundary_probe.py",
            "from messaging.models import OutboxMessage\n",
            "orders.boundary_probe -> messaging.models",
        ),
        (
            "catalog/boundary_probe.py",
            "from messaging.kafka.relay import OutboxRelay\n",
            "catalog.boundary_probe -> messaging.kafka.relay",
        ),
    ],
)
def test_a_planted_violation_of_each_kernel_contract_fails(project_copy, importer, statement, reported):
    path = project_copy / importer
    path.write_text((path.read_text() if path.exists() else "") + statement)

    result = lint_imports(project_copy)

    assert result.returncode != 0
    assert reported in result.stdout


def test_a_module_may_import_the_messaging_facade(project_copy):
    (project_copy / "orders" / "boundary_probe.py").write_text("from messaging import Event, occurred_at, publish\n")

    result = lint_imports(project_copy)

    assert result.returncode == 0, result.stdout


def test_an_import_of_another_modules_contracts_is_allowed(project_copy):
    (project_copy / "orders" / "boundary_probe.py").write_text("from catalog.contracts import BookPublished\n")

    result = lint_imports(project_copy)

    assert result.returncode == 0, result.stdout


CONTRACT_DEPENDENCIES_ALLOWED = {"__future__", "uuid", "decimal", "datetime", "enum", "typing", "pydantic", "messaging"}


@pytest.mark.parametrize("module", topology.MODULES)
def test_a_contracts_file_depends_only_on_the_kernel_and_other_contracts(module):
    import ast

    tree = ast.parse((ROOT / module / "contracts.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    strays = {
        name
        for name in imported
        if name.split(".")[0] not in CONTRACT_DEPENDENCIES_ALLOWED
        and not (topology.module_of(name) and name.endswith(".contracts"))
    }
    assert not strays, f"{module}/contracts.py imports {strays}: other modules would depend on them through it"
