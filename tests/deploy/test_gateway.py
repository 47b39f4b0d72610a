"""The nginx gateway's own answers: the body limit as a 413 problem, and nothing of the request echoed unescaped.

The template is rendered as scripts/services.sh renders it and served by a real nginx on a free port
(its upstreams point at a closed port: these answers never reach a service); the routes that do reach
a service are checked against stand-in services that echo what they were asked.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.processes import REPO, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.deploy
LIMIT = 1048576  # the services' REQUEST_BODY_MAX_BYTES default
MODULES = ("accounts", "catalog", "orders", "recommendations")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        subprocess.run(["bash", "scripts/dev/nginx.sh", "install"], cwd=REPO, check=True)
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found


@contextlib.contextmanager
def running_gateway(upstreams: dict[str, int]) -> Iterator[int]:
    """The template rendered for these upstream ports (module -> port) and served by nginx; its port."""
    workdir = Path(tempfile.mkdtemp(prefix="quire-gateway-"))
    port = free_port()
    values = {
        "QUIRE_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        **{f"QUIRE_{module.upper()}_UPSTREAM": f"127.0.0.1:{upstream}" for module, upstream in upstreams.items()},
        "QUIRE_STATIC_ROOT": str(workdir),
        "QUIRE_ACCESS_LOG": str(workdir / "access.log"),
        "QUIRE_REQUEST_BODY_MAX_BYTES": str(LIMIT),
    }
    template = (REPO / "deploy" / "nginx" / "quire.conf.template").read_text()
    (workdir / "quire.conf").write_text(re.sub(r"\$\{(QUIRE_[A-Z0-9_]+)\}", lambda m: values[m.group(1)], template))
    temp = workdir / "temp"
    temp.mkdir()
    (workdir / "nginx.conf").write_text(
        f"daemon off; pid {workdir}/nginx.pid; error_log {workdir}/error.log; events {{}}\n"
        f"http {{ client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};"
        f" uwsgi_temp_path {temp}; scgi_temp_path {temp}; include {workdir}/quire.conf; }}\n"
    )
    process = subprocess.Popen([nginx_binary(), "-p", str(workdir), "-c", str(workdir / "nginx.conf")])
    try:
        wait_until(lambda: _connects(port), timeout=20, message="nginx did not start listening")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway():
    """Every upstream a closed port: the gateway's own answers only."""
    closed = free_port()
    with running_gateway(dict.fromkeys(MODULES, closed)) as port:
        yield port


class EchoUpstream(BaseHTTPRequestHandler):
    """A stand-in service: answers with its own name, the path it was asked and the prefix header."""

    def do_GET(self):
        body = json.dumps(
            {"upstream": self.server.name, "path": self.path, "prefix": self.headers.get("X-Forwarded-Prefix")}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet: the test reads the answers, not a log."""


@pytest.fixture(scope="module")
def gateway_to_echoes():
    """The gateway with one stand-in service per module behind it."""
    servers = {}
    for module in MODULES:
        server = ThreadingHTTPServer(("127.0.0.1", 0), EchoUpstream)
        server.name = module
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[module] = server
    try:
        with running_gateway({module: server.server_address[1] for module, server in servers.items()}) as port:
            yield port
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes as a client may send them (urllib would quote what the test needs raw)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        # nginx may answer (413) and close before the whole body is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(port: int, target: str, host: str = "shop.example") -> tuple[int, dict[str, str], bytes]:
    return raw_request(port, f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))


@pytest.mark.parametrize("target", ['/api/nope/"quoted"', "/api/nope/back\\slash", '/nowhere/"}', "/api/x/%22ok%22"])
def test_the_gateways_json_bodies_stay_json_whatever_the_uri(gateway, target):
    status, headers, body = get(gateway, target)
    assert status == 404 and headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["instance"] in (target, None)
    assert problem["instance"] == (None if '"' in target or "\\" in target else target)


@pytest.mark.parametrize("host", ['evil"},"x":{"', "x\\y", "a<b>"])
def test_a_host_header_that_is_not_a_host_name_is_never_echoed(gateway, host):
    status, headers, body = get(gateway, "/api/", host=host)
    assert status == 400 and host.encode() not in body
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "The Host header is not a host name."


@pytest.mark.parametrize("host", ["shop.example", "127.0.0.1:8000", "[::1]:8000"])
def test_the_api_root_links_to_the_host_asked_for(gateway, host):
    status, _, body = get(gateway, "/api/", host=host)
    assert status == 200
    assert json.loads(body)["catalog"]["api"] == f"http://{host}/api/catalog/"


def test_a_body_over_the_limit_is_a_413_problem_with_the_same_limit_as_django(gateway):
    from django.conf import settings

    assert settings.REQUEST_BODY_MAX_BYTES == LIMIT  # one number at both layers
    body = b"x" * (LIMIT + 1)
    request = (
        b"POST /api/accounts/token/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    status, headers, answer = raw_request(gateway, request)
    assert status == 413 and headers["content-type"] == "application/problem+json"
    problem = json.loads(answer)
    assert problem["status"] == 413 and str(LIMIT) in problem["detail"]


@pytest.mark.parametrize("module", MODULES)
def test_each_process_map_is_reachable_at_map_module(gateway_to_echoes, module):
    for target, path in ((f"/map/{module}/", "/api/map/"), (f"/map/{module}/svg/", "/api/map/svg/")):
        status, _, body = get(gateway_to_echoes, target)
        assert status == 200, target
        assert json.loads(body) == {"upstream": module, "path": path, "prefix": f"/map/{module}/"}


def test_only_the_map_routes_forward_a_prefix_and_a_clients_own_is_dropped(gateway_to_echoes):
    request = (
        b"GET /api/orders/ HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Prefix: /evil/\r\nConnection: close\r\n\r\n"
    )
    status, _, body = raw_request(gateway_to_echoes, request)
    assert status == 200
    assert json.loads(body) == {"upstream": "orders", "path": "/api/orders/", "prefix": None}
