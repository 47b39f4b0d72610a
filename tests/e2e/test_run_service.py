"""``manage.py run_service`` as an operator meets it: it serves, stops on SIGTERM, and fails loudly."""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.harness import one_process_env
from tests.support.http import answers
from tests.support.processes import PYTHON, REPO, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}/api/")


def test_serves_then_stops_every_child_on_sigterm():
    with tempfile.TemporaryDirectory(prefix="quire-run-service-") as workdir:
        port = free_port()
        process = subprocess.Popen(
            [PYTHON, "manage.py", "run_service", "--port", str(port), "--migrate", "--max-restarts", "0"],
            env=one_process_env(Path(workdir)),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: process.poll() is not None or _answers(port), timeout=60, message="run_service answers")
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
            env=one_process_env(Path(workdir)),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result
    assert "web exited with" in result.stderr and "web kept dying; the service stopped." in result.stderr
