"""A process starts without numpy and scipy until it builds, loads or asks a recommendation model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "QUIRE_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "loaded:", "imported at start: " + done.stdout.strip()
