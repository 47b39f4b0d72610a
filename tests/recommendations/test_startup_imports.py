"""A process starts without numpy and scipy until it builds, loads or asks a recommendation model."""

from __future__ import annotations

from tests.support.processes import PYTHON, clean_env, run

# What every management command does before its own work: set Django up and run the system
# checks, which import the URLconf and with it every view, serializer and selector.
PROBE = """
import sys
import django
django.setup()
from django.core import checks
checks.run_checks()
print("loaded:" + ",".join(name for name in ("numpy", "scipy", "recommendations.engine") if name in sys.modules))
"""


def test_setup_and_system_checks_do_not_import_the_engine(tmp_path):
    environment = clean_env(DJANGO_SETTINGS_MODULE="config.settings", QUIRE_VAR_DIR=str(tmp_path))

    done = run([PYTHON, "-c", PROBE], environment)

    assert done.stdout.strip().splitlines()[-1] == "loaded:", "imported at start: " + done.stdout.strip()
