"""scripts/services.sh reads QUIRE_SERVICES first: a grouping it cannot run fails before anything starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import REPO

HINT = 'like "accounts+catalog+orders recommendations"'


def services_sh(tmp_path: Path, grouping: str, *args: str) -> subprocess.CompletedProcess:
    """services.sh with its state, and the dev servers' state, in directories of the test's own."""
    env = {
        **os.environ,
        "QUIRE_SERVICES": grouping,
        "QUIRE_SERVICES_DIR": str(tmp_path / "services"),
        "QUIRE_STATE_DIR": str(tmp_path / "servers"),
    }
    return subprocess.run(
        ["bash", "scripts/services.sh", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("grouping", "sentence"),
    [
        (
            "accounts+billing catalog orders recommendations",
            "QUIRE_SERVICES names 'billing', not a module: set it to words of accounts catalog orders "
            "recommendations joined by +",
        ),
        (
            "accounts catalog+orders orders recommendations",
            "QUIRE_SERVICES names orders twice: set each module in exactly one service",
        ),
        (
            "accounts+catalog+orders",
            "QUIRE_SERVICES leaves out recommendations: set each module in exactly one service",
        ),
        ("accounts++catalog orders recommendations", "QUIRE_SERVICES has an empty module in 'accounts++catalog'"),
        ("accounts+catalog+ orders recommendations", "QUIRE_SERVICES has an empty module in 'accounts+catalog+'"),
        ("+ accounts catalog orders recommendations", "QUIRE_SERVICES has an empty module in '+'"),
        (
            "accounts,catalog,orders recommendations",
            "QUIRE_SERVICES joins modules with +, not a comma ('accounts,catalog,orders')",
        ),
        ("* accounts catalog orders recommendations", "QUIRE_SERVICES names '*', not a module"),  # no glob
    ],
)
def test_a_grouping_it_cannot_run_fails_saying_what_to_set_before_starting_anything(tmp_path, grouping, sentence):
    result = services_sh(tmp_path, grouping, "start")

    assert result.returncode == 1
    assert f"services.sh: error: {sentence}" in result.stderr
    if "empty module" in sentence or "comma" in sentence:
        assert HINT in result.stderr
    # Nothing started: no state directory, no PostgreSQL or Kafka state, not a line of the start's own.
    assert not (tmp_path / "services").exists() and not (tmp_path / "servers").exists()
    assert result.stderr.count("\n") == 1 and not result.stdout


def test_every_command_reads_the_grouping_first(tmp_path):
    for command in ("status", "stop", "manage"):
        result = services_sh(tmp_path, "accounts catalog", command)
        assert result.returncode == 1 and "QUIRE_SERVICES leaves out orders" in result.stderr, command


def test_a_grouping_of_every_module_once_is_accepted(tmp_path):
    # Past the grouping, an unknown command is the usage line (exit 2): the grouping itself was fine.
    for grouping in ("accounts+catalog+orders recommendations", "  recommendations   accounts+orders catalog ", ""):
        result = services_sh(tmp_path, grouping, "no-such-command")
        assert (result.returncode, result.stderr.split()[0]) == (2, "usage:"), (grouping, result.stderr)
