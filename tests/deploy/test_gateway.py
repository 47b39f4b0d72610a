"""The nginx gateway's own answers: the body limit as a 413 problem, and nothing of the request echoed unescaped.

The template is rendered as scripts/services.sh renders it and served by a real nginx on a free port
(its upstreams point at a closed port, but catalog's at a stand-in); the routes that reach a service are
checked against stand-in services that echo what they were asked.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
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


class EchoUpstream(http.server.BaseHTTPRequestHandler):
    """A stand-in service: answers with its own name, the path it was asked and the headers it got."""

    def do_GET(self):
        body = json.dumps({"upstream": self.server.name, "path": self.path, "headers": dict(self.headers.items())})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format, *args):
        """Quiet: the tests read the answers, not a log."""


@pytest.fixture(scope="module")
def echoes() -> Iterator[dict[str, int]]:
    """One stand-in service per module: module -> port."""
    servers = {}
    for module in MODULES:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoUpstream)
        server.name = module
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[module] = server
    try:
        yield {module: server.server_address[1] for module, server in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


@contextlib.contextmanager
def running_gateway(upstreams: dict[str, int], workdir: Path) -> Iterator[int]:
    """The template rendered into ``workdir`` for these upstream ports (module -> port), served by nginx; its port."""
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


@pytest.fixture(scope="module")
def gateway_dir() -> Iterator[Path]:
    """The gateway's files: its rendered config, and its access log (access.log)."""
    workdir = Path(tempfile.mkdtemp(prefix="quire-gateway-"))
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway(gateway_dir, echoes) -> Iterator[int]:
    """Every upstream a closed port but catalog's, a stand-in: mostly the gateway's own answers."""
    closed = free_port()
    with running_gateway({**dict.fromkeys(MODULES, closed), "catalog": echoes["catalog"]}, gateway_dir) as port:
        yield port


@pytest.fixture(scope="module")
def gateway_to_echoes(echoes) -> Iterator[int]:
    """The gateway with one stand-in service per module behind it."""
    workdir = Path(tempfile.mkdtemp(prefix="quire-gateway-echoes-"))
    try:
        with running_gateway(echoes, workdir) as port:
            yield port
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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


def get(port: int, target: str, host: str = "shop.example", headers: str = "") -> tuple[int, dict[str, str], bytes]:
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    return raw_request(port, request.encode("latin-1"))


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


ACCESS_FIELDS = ["time", "level", "logger", "service", "module", "message", "correlation_id", "trace_id"]


def access_lines(gateway_dir: Path) -> list[dict]:
    """Every line of the gateway's access log, each of which must be one JSON object."""
    return [json.loads(line) for line in (gateway_dir / "access.log").read_text().splitlines() if line]


def test_the_access_log_is_json_lines_with_the_correlation_and_trace_ids(gateway, gateway_dir):
    trace = "0af7651916cd43dd8448eb211c80319c"
    caller = f"X-Correlation-ID: gateway-log-1\r\ntraceparent: 00-{trace}-b7ad6b7169203331-01\r\n"
    get(gateway, "/api/", headers=caller)
    get(gateway, '/api/nope/"quoted"', headers='X-Correlation-ID: not"valid\r\n')

    def both_logged():
        lines = access_lines(gateway_dir)
        return len([line for line in lines if line["message"].startswith("GET /api/")]) >= 2 and lines

    lines = wait_until(both_logged, timeout=10, message="the gateway's access lines")
    given = next(line for line in lines if line["correlation_id"] == "gateway-log-1")
    assert list(given)[: len(ACCESS_FIELDS)] == ACCESS_FIELDS  # the shape of every Quire process's lines
    assert (given["service"], given["logger"], given["level"]) == ("gateway", "nginx.access", "INFO")
    assert (given["status"], given["message"], given["trace_id"]) == (200, "GET /api/ HTTP/1.1 200", trace)
    # A quote in the URI stays inside its JSON string; an id the services would refuse is replaced by nginx's own.
    refused = next(line for line in lines if line["status"] == 404)
    assert refused["level"] == "WARNING" and '"quoted"' in refused["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", refused["correlation_id"]) and refused["trace_id"] == ""


@pytest.mark.parametrize(
    ("sent", "seen"),
    [("https", "https"), (None, "http"), ("http", "http"), ("gopher", "http")],
    ids=["from-a-tls-ingress", "none", "http", "nonsense"],
)
def test_an_https_ingress_in_front_is_what_the_services_see(gateway, sent, seen):
    # Behind a TLS-terminating ingress the gateway's own $scheme is http: passing that on would make every
    # service (SECURE_HTTPS=true) redirect to https, forever.
    status, _, body = get(gateway, "/api/catalog/books/", headers=f"X-Forwarded-Proto: {sent}\r\n" if sent else "")
    assert status == 200, body
    assert json.loads(body)["headers"]["X-Forwarded-Proto"] == seen


def test_the_api_root_links_to_https_behind_a_tls_ingress(gateway):
    status, _, body = get(gateway, "/api/", headers="X-Forwarded-Proto: https\r\n")
    assert status == 200
    assert json.loads(body)["orders"]["docs"] == "https://shop.example/api/orders/docs/"


@pytest.mark.parametrize("module", MODULES)
def test_each_process_map_is_reachable_at_map_module(gateway_to_echoes, module):
    for target, path in ((f"/map/{module}/", "/api/map/"), (f"/map/{module}/svg/", "/api/map/svg/")):
        status, _, body = get(gateway_to_echoes, target)
        assert status == 200, target
        answer = json.loads(body)
        assert (answer["upstream"], answer["path"], answer["headers"].get("X-Forwarded-Prefix")) == (
            module,
            path,
            f"/map/{module}/",
        )


def test_only_the_map_routes_forward_a_prefix_and_a_clients_own_is_dropped(gateway_to_echoes):
    request = (
        b"GET /api/orders/ HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Prefix: /evil/\r\nConnection: close\r\n\r\n"
    )
    status, _, body = raw_request(gateway_to_echoes, request)
    assert status == 200
    answer = json.loads(body)
    assert (answer["upstream"], answer["path"], answer["headers"].get("X-Forwarded-Prefix")) == (
        "orders",
        "/api/orders/",
        None,
    )
