"""Child processes of a test run: their environment, starting them with a log, signals, stopping.

Every process a harness starts runs from the repository root with :func:`clean_env` (the test
run's own Quire settings do not leak in), writes to a log file that a failed test shows the end
of (:func:`tail`), and dies with the test run if that is killed (no relay or web server is left
behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PR_SET_PDEATHSIG = 1

# Quire's own settings are set per process; what the test run itself has must not leak in.
# The dev servers' ports (QUIRE_PG_PORT, QUIRE_KAFKA_PORT, ...) and state dir pass through.
_QUIRE_SETTINGS = re.compile(
    r"^(SERVICE|EVENT_TRANSPORT|KAFKA_\w+|MESSAGING_\w+|QUIRE_VAR_DIR|STATIC_ROOT|DEBUG|SECRET_KEY|"
    r"(\w+_)?DATABASE_URL|DATABASE_CONN_\w+|JWT_\w+|DJANGO_SETTINGS_MODULE|PORT|QUIRE_SERVICES_DIR|QUIRE_SERVICES|"
    r"QUIRE_(ACCOUNTS|CATALOG|ORDERS|RECOMMENDATIONS)_PORT|ORDERS_\w+|THROTTLE_\w+|PASSWORD_HASH_\w+|NUM_PROXIES)$"
)


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment a shop process gets: ours minus Quire's own settings, plus ``overrides``."""
    env = {name: value for name, value in os.environ.items() if not _QUIRE_SETTINGS.match(name)}
    env.update(overrides)
    return env


def settings_of(var_dir: Path, names: Iterable[str], **env: str) -> dict:
    """The values of the settings ``names`` in a process started with ``env`` (e.g. ``SERVICE=catalog``)."""
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {list(names)!r}}}))"
    )
    environment = clean_env(QUIRE_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="config.settings", **env)
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (so parallel runs do not collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(
    argv: list[str],
    env: dict[str, str] | None = None,
    *,
    timeout: float = 120,
    ok_if: Callable[[subprocess.CompletedProcess], bool] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` to its end; a non-zero exit (unless ``ok_if`` accepts it) fails with its output."""
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 and not (ok_if and ok_if(result)):
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def dev_server(script: str) -> dict[str, str]:
    """Start ``scripts/dev/<script>`` (idempotent) and return the ``export NAME=value`` lines its ``env`` prints."""
    run(["bash", f"scripts/dev/{script}", "start"], dict(os.environ), timeout=600)  # a first start resolves jars
    output = run(["bash", f"scripts/dev/{script}", "env"], dict(os.environ)).stdout
    return {m.group(1): m.group(2).strip("'\"") for m in re.finditer(r"^export (\w+)=(.*)$", output, re.M)}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # A test run that is killed must not leave consumers, relays or web servers behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``argv`` in the background, its output appended to ``log`` after a line saying what started."""
    with log.open("ab") as output:
        output.write(f"\n=== {time.strftime('%H:%M:%S')} start {' '.join(argv[1:])}\n".encode())
        output.flush()
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def stop(processes: Iterable[subprocess.Popen], *, timeout: float) -> None:
    """SIGTERM every running one, then SIGKILL what has not ended ``timeout`` seconds later."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` of a log (what a failed test shows of a process)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
