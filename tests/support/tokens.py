"""Customer JWTs for a shop started without accounts: a key pair of the test's own, tokens as accounts signs them.

The processes get the public key (``JWT_PUBLIC_KEY_FILE``) and verify with it alone, exactly
as every module verifies accounts' tokens in production.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_ISSUER = "quire-accounts"  # settings.SIMPLE_JWT["ISSUER"]'s default
JWT_AUDIENCE = "quire"  # settings.SIMPLE_JWT["AUDIENCE"]'s default


@dataclass(frozen=True)
class JwtKeys:
    private_pem: str
    public_file: Path

    @classmethod
    def create(cls, directory: Path) -> JwtKeys:
        """A new RS256 key pair; the public half written to ``directory/jwt-public.pem``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_file = directory / "jwt-public.pem"
        public_file.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return cls(private_pem, public_file)

    def customer_token(self, customer_id: uuid.UUID) -> str:
        """An access token as accounts would sign it: what the modules' JWT authentication accepts."""
        now = int(time.time())
        claims = {
            "token_type": "access",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "sub": str(customer_id),
            "role": "customer",
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256")
