"""run_service starts its children with production settings unless DEBUG is set."""

from __future__ import annotations

from pathlib import Path

from config import keys
from config.management.commands.run_service import Command


def children_env(monkeypatch, settings, tmp_path: Path, **variables: str) -> dict[str, str]:
    settings.VAR_DIR = tmp_path
    for name in (
        "DEBUG",
        "SECRET_KEY",
        "JWT_PUBLIC_KEY",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_PRIVATE_KEY",
        "JWT_PRIVATE_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Command().children_env()


def test_without_debug_the_children_get_production_settings_and_this_machines_keys(monkeypatch, settings, tmp_path):
    env = children_env(monkeypatch, settings, tmp_path)
    assert env["DEBUG"] == "false"
    assert env["SECRET_KEY"] == (tmp_path / "secret-key").read_text() and len(env["SECRET_KEY"]) >= 50
    assert env["JWT_PUBLIC_KEY_FILE"] == str(tmp_path / "jwt-public.pem")
    assert env["JWT_PRIVATE_KEY_FILE"] == str(tmp_path / "jwt-private.pem")


def test_debug_set_by_the_caller_is_left_alone(monkeypatch, settings, tmp_path):
    env = children_env(monkeypatch, settings, tmp_path, DEBUG="true")
    assert env["DEBUG"] == "true" and "SECRET_KEY" not in env
    assert not (tmp_path / "secret-key").exists()


def test_the_callers_secret_and_keys_win(monkeypatch, settings, tmp_path):
    env = children_env(monkeypatch, settings, tmp_path, SECRET_KEY="s" * 60, JWT_PUBLIC_KEY_FILE="/keys/public.pem")
    assert (env["SECRET_KEY"], env["JWT_PUBLIC_KEY_FILE"]) == ("s" * 60, "/keys/public.pem")
    assert "JWT_PRIVATE_KEY_FILE" not in env


def test_the_local_secret_key_is_made_once_and_kept(tmp_path):
    first = keys.local_secret_key(tmp_path)
    assert keys.local_secret_key(tmp_path) == first
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret-key"]  # no candidate left behind


def build_children(settings, tmp_path: Path, monkeypatch, **flags: bool):
    """run_service's children with Kafka, production settings, and none of the roles left out unless ``flags`` say."""
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", "s" * 60)
    settings.VAR_DIR = tmp_path
    settings.EVENT_TRANSPORT = "kafka"
    settings.MESSAGING = {**settings.MESSAGING, "RELAY_HEARTBEAT_FILE": "", "CONSUMER_HEARTBEAT_FILE": ""}
    command = Command()
    command.stop_timeout = 25.0
    options = {"host": "127.0.0.1", "port": 8123, "workers": 1, "threads": 2}
    options |= {f"no_{name}": flags.get(name, False) for name in ("relay", "consumer", "expiry", "sagas")}
    return {child.name: child for child in command.build_children(options)}


def test_every_child_starts_with_the_environment_made_for_it(monkeypatch, settings, tmp_path):
    children = build_children(settings, tmp_path, monkeypatch)

    # Given as the process (a positional slip), the environment never reached Popen: children ran in DEBUG.
    assert set(children) == {"web", "relay", "consumer", "expiry", "sagas"}
    assert all(child.process is None and child.env["DEBUG"] == "false" for child in children.values())


def test_every_child_is_told_the_heartbeat_files_of_the_relay_and_consumer_it_runs(settings, tmp_path, monkeypatch):
    children = build_children(settings, tmp_path, monkeypatch)

    relay, consumer = children["relay"].heartbeat, children["consumer"].heartbeat
    assert relay == str(tmp_path / "heartbeat" / "all-8123-relay")
    assert consumer == str(tmp_path / "heartbeat" / "all-8123-consumer")
    for child in children.values():  # the web server's /health/ready/ reads them
        assert child.env["MESSAGING_RELAY_HEARTBEAT_FILE"] == relay, child.name
        assert child.env["MESSAGING_CONSUMER_HEARTBEAT_FILE"] == consumer, child.name


def test_a_role_the_service_does_not_run_has_no_heartbeat_file(settings, tmp_path, monkeypatch):
    # As in a Kubernetes relay pod: the ConfigMap names both files, the pod runs only the relay.
    monkeypatch.setenv("MESSAGING_CONSUMER_HEARTBEAT_FILE", "/tmp/quire-consumer.heartbeat")
    children = build_children(settings, tmp_path, monkeypatch, consumer=True)

    assert "consumer" not in children
    assert children["web"].env["MESSAGING_CONSUMER_HEARTBEAT_FILE"] == ""
    assert children["web"].env["MESSAGING_RELAY_HEARTBEAT_FILE"] == children["relay"].heartbeat
