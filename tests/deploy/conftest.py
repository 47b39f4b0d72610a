"""The deployment files, loaded by the tools that deploy them: compose-go (the Compose Spec loader of
``docker compose``) and kustomize, then the Kubernetes API types (``deploy/validate``, Go).

The Go tool is built once per session with its module and build caches in the state dir
(``${QUIRE_STATE_DIR:-~/.cache/quire}/go``), outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import PYTHON, REPO, clean_env

STATE = Path(os.environ.get("QUIRE_STATE_DIR") or Path.home() / ".cache" / "quire")
GO_STATE = STATE / "go"
VALIDATE_SOURCE = REPO / "deploy" / "validate"


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        pytest.fail("the deployment checks need Go (deploy/validate): install it or put `go` on PATH")
    return found


@pytest.fixture(scope="session")
def validator() -> Path:
    """``deploy/validate`` built into the state dir (Go's module proxy and caches outside the repo)."""
    binary = GO_STATE / "bin" / "validate"
    env = {
        **os.environ,
        "GOMODCACHE": str(GO_STATE / "mod"),
        "GOCACHE": str(GO_STATE / "cache"),
        "GOFLAGS": "-buildvcs=false -mod=readonly",
        "CGO_ENABLED": "0",
    }
    result = subprocess.run(
        [go_binary(), "build", "-o", str(binary), "."],
        cwd=VALIDATE_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"building deploy/validate failed:\n{result.stdout}\n{result.stderr}"
    return binary


def run_validator(validator: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(
        [str(validator), *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def env_example_names() -> set[str]:
    """Every variable ``.env.example`` lists."""
    names = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            names.add(line.split("=", 1)[0])
    return names


def management_commands() -> set[str]:
    """Every ``manage.py`` command of a process that serves every module."""
    code = (
        "import json, django; django.setup(); from django.core.management import get_commands; "
        "print(json.dumps(sorted(get_commands())))"
    )
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings", SERVICE="all", EVENT_TRANSPORT="inprocess")
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))
