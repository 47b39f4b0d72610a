"""``manage.py run_service`` as an operator meets it: it serves, stops on SIGTERM, and fails loudly."""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.harness import MODULES, PYTHON, REPO, _clean_env, free_port, wait_until

pytestmark = pytest.mark.e2e


def _env(workdir: Path) -> dict[str, str]:
    return _clean_env(
        SERVICE="all",
        EVENT_TRANSPORT="inprocess",
        QUIRE_VAR_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'default.sqlite3'}",
        **{f"{m.upper()}_DATABASE_URL": f"sqlite:///{workdir / (m + '.sqlite3')}" for m in MODULES},
    )


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_serves_then_stops_every_child_on_sigterm():
    with tempfile.TemporaryDirectory(prefix="quire-run-service-") as workdir:
        port = free_port()
        process = subprocess.Popen(
            [PYTHON, "manage.py", "run_service", "--port", str(port), "--migrate", "--max-restarts", "0"],
            env=_env(Path(workdir)),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: process.poll() is not None or _answers(port), timeout=60, what="run_service answers")
            assert process.poll() is None, process.communicate()[0]
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=40)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert "got SIGTERM: stopping" in output and "run_service[all] stopped" in output
        with socket.socket() as probe:  # gunicorn went with it: the port is free again
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_exits_non_zero_when_its_web_server_cannot_start():
    with tempfile.TemporaryDirectory(prefix="quire-run-service-") as workdir, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [PYTHON, "manage.py", "run_service", "--port", str(taken.getsockname()[1]), "--max-restarts", "0"],
            env=_env(Path(workdir)),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result
    assert "web exited with" in result.stderr and "web kept dying; the service stopped." in result.stderr
