"""How a client talks to its server: one settings model for every client and every block.

Timeout, TLS, retries, backoff, connection pool, proxy and audit log are declared here once
(as httpx's `Timeout`/`Limits` or prefect-aws' `AwsClientParameters` are), nested in each block
as its `transport` field, and passed whole to each client.

Example:
    >>> Transport(timeout=5, ca_cert=None).verify
    True
    >>> Transport(proxy="http://proxy.corp:3128").proxies
    {'http': 'http://proxy.corp:3128', 'https': 'http://proxy.corp:3128'}
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator

from opsflow.opsapi.errors import ConfigurationError
from opsflow.opsapi.models import StrictModel
from opsflow.opsapi.redaction import register_secret


class Transport(StrictModel):
    """Timeout, TLS, retries, pool, proxy and audit log of one client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds for connecting and for each read."
    )
    ca_cert: str | None = Field(
        default=None,
        description="Path of the PEM CA bundle that signed the server's certificate.",
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server's certificate; turn off only in a lab."
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of idempotent requests on connection errors, 429, 502, 503 and 504.",
    )
    backoff: float = Field(
        default=0.5, ge=0, le=30, description="Backoff factor in seconds between retries."
    )
    pool_size: int = Field(
        default=32, ge=1, le=1000, description="Connections kept open to the server."
    )
    proxy: str | None = Field(
        default=None,
        description="HTTP(S) proxy URL, e.g. http://proxy.corp:3128; empty for a direct connection.",
    )
    audit_log: str | None = Field(
        default=None, description="JSON-lines file recording every request; empty for none."
    )

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            raise ValueError(
                f"proxy must be a URL such as http://proxy.corp:3128, not {value!r}"
                if not parts.password
                else "proxy must be a URL such as http://user:***@proxy.corp:3128"
            )
        register_secret(parts.password)
        return value

    @property
    def verify(self) -> bool | str:
        """`requests`' verify argument: the CA bundle when given (it must exist), else the flag.

        Raises:
            ConfigurationError: `ca_cert` names a file that does not exist.
        """
        if self.ca_cert:
            path = Path(self.ca_cert).expanduser()
            if not path.is_file():
                raise ConfigurationError(
                    f"ca_cert {str(path)!r} does not exist; give the path of the PEM CA bundle"
                )
            return str(path)
        return self.verify_tls

    @property
    def proxies(self) -> dict[str, str]:
        """`requests`' proxies mapping (empty: connect directly)."""
        return {"http": self.proxy, "https": self.proxy} if self.proxy else {}
