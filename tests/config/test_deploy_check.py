"""`manage.py check --deploy` is clean with the documented production settings."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from config.keys import generate_key_pair
from tests.support.processes import REPO, clean_env, settings_of


def check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    private_pem, public_pem = generate_key_pair()
    (tmp_path / "jwt-private.pem").write_text(private_pem)
    (tmp_path / "jwt-public.pem").write_text(public_pem)
    environment = clean_env(
        QUIRE_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
        # What docs/operations.md lists for production.
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="shop.example",
        CSRF_TRUSTED_ORIGINS="https://shop.example",
        JWT_PRIVATE_KEY_FILE=str(tmp_path / "jwt-private.pem"),
        JWT_PUBLIC_KEY_FILE=str(tmp_path / "jwt-public.pem"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = check_deploy(tmp_path, SECURE_HTTPS="true")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_plain_http_gives_up(tmp_path):
    result = check_deploy(tmp_path, SECURE_HTTPS="false")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def test_x_forwarded_proto_is_believed_behind_the_gateway_and_not_in_the_one_process_shop(tmp_path):
    # A service is reached through the gateway, which sets the header; the one-process shop has nothing
    # in front by default, so the header would be any client's claim.
    kafka = {"EVENT_TRANSPORT": "kafka", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    assert settings_of(tmp_path, ["SECURE_PROXY_SSL_HEADER"])["SECURE_PROXY_SSL_HEADER"] is None
    service = settings_of(tmp_path, ["SECURE_PROXY_SSL_HEADER"], SERVICE="catalog", **kafka)
    assert service["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    trusted = settings_of(tmp_path, ["SECURE_PROXY_SSL_HEADER"], TRUST_X_FORWARDED_PROTO="true")
    assert trusted["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
