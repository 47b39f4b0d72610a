"""RS256 key pair for customer JWTs.

accounts signs with the private key; every module verifies with the public key only.
In development (DEBUG) a key pair is generated under var/ on first run.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured


def generate_key_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def _read(env: environ.Env, name: str) -> str | None:
    """A key given inline (NAME) or as a file (NAME_FILE)."""
    inline = env.str(name, default="")
    if inline:
        return inline.replace("\\n", "\n")
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE={path!r} cannot be read ({error.strerror}): set it to a PEM file."
            ) from error
    return None


def load_jwt_keys(
    env: environ.Env, *, var_dir: Path, needs_private: bool, allow_generate: bool
) -> tuple[str | None, str]:
    private, public = _read(env, "JWT_PRIVATE_KEY"), _read(env, "JWT_PUBLIC_KEY")
    if public and (private or not needs_private):
        return private, public
    private_path, public_path = var_dir / "jwt-private.pem", var_dir / "jwt-public.pem"
    if not public_path.exists() and allow_generate:
        var_dir.mkdir(parents=True, exist_ok=True)
        private_pem, public_pem = generate_key_pair()
        private_path.write_text(private_pem)
        os.chmod(private_path, 0o600)
        public_path.write_text(public_pem)
    if public_path.exists() and (private_path.exists() or not needs_private):
        return (
            private or (private_path.read_text() if private_path.exists() else None)
        ), public or public_path.read_text()
    wanted = "JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE" if needs_private else "JWT_PUBLIC_KEY_FILE"
    raise ImproperlyConfigured(
        f"No JWT signing keys: set {wanted} (PEM files), or DEBUG=true to generate a development pair."
    )


def local_secret_key(var_dir: Path) -> str:
    """This machine's secret key under ``var_dir``, made once and kept (0600).

    Several services may start at once: each writes a candidate to its own file and links it into
    place, which fails if another got there first; the file in place is complete either way.
    """
    path = var_dir / "secret-key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        candidate = var_dir / f".secret-key.{os.getpid()}"
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
