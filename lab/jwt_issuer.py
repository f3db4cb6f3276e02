"""The lab's JWT issuer: an RSA key pair whose public half OpenBao's `jwt` method trusts
(`jwt_validation_pubkeys`), standing in for a Kubernetes API server or a CI system's OIDC
issuer, so JWT login is tested without either.

Example:
    >>> issuer = JWTIssuer(Path("/tmp/lab/jwt"))                         # doctest: +SKIP
    >>> token = issuer.issue(subject=SERVICE_ACCOUNT, audience="opsflow")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://opsflow-lab.invalid"
AUDIENCE = "opsflow"
SERVICE_ACCOUNT = "system:serviceaccount:ops:opsflow-runbook"  # what Kubernetes puts in `sub`


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JWTIssuer:
    """Signs RS256 JWTs with a key pair kept in `directory` (made once, private key 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        private = directory / "signing-key.pem"
        if not private.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private.touch(mode=0o600)
            private.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self._key = serialization.load_pem_private_key(private.read_bytes(), password=None)

    @property
    def public_pem(self) -> str:
        return (
            self._key.public_key()  # type: ignore[union-attr]
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def issue(
        self,
        subject: str = SERVICE_ACCOUNT,
        audience: str = AUDIENCE,
        lifetime: float = 600,
        **claims: Any,
    ) -> str:
        """A signed JWT; a negative `lifetime` makes one that expired that long ago (OpenBao
        allows 150 s of leeway past `exp`)."""
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "iat": min(now, now + int(lifetime) - 60),
            "nbf": min(now, now + int(lifetime) - 60) - 5,
            "exp": now + int(lifetime),
            **claims,
        }
        header = {"alg": "RS256", "typ": "JWT"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        signature = self._key.sign(  # type: ignore[union-attr]
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64(signature)}"
