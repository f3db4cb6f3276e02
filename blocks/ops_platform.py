"""The ops platform block: where the platform is and where its token comes from."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from opsflow.blocks.tls import tls_verify
from opsflow.blocks.vault import VaultSecret
from opsflow.opsapi.audit import AuditLog
from opsflow.opsapi.errors import ConfigurationError
from opsflow.opsapi.platform import OpsPlatformClient


class OpsPlatform(Block):
    """An ops platform (hosts and jobs API) and its credentials.

    The token is either stored here as a secret or, better, read from Vault at run time.

    Example:
        >>> platform = OpsPlatform.load("lab")                                 # doctest: +SKIP
        >>> platform.get_client().list_hosts(tag="web")                        # doctest: +SKIP
    """

    _block_type_name = "Ops Platform"
    _description = "The ops platform's URL, token (stored or from Vault), TLS and retry settings."

    url: str = Field(default="https://127.0.0.1:18443", description="Root URL of the platform.")
    token: SecretStr | None = Field(default=None, description="API token, if not read from Vault.")
    token_from_vault: VaultSecret | None = Field(
        default=None, description="Where in Vault to read the API token."
    )
    auth_scheme: Literal["Token", "Bearer"] = Field(
        default="Token", description="Authorization scheme: Token or Bearer."
    )
    ca_cert: str | None = Field(default=None, description="Path of the CA bundle for its TLS.")
    verify_tls: bool = Field(default=True, description="Verify the platform's certificate.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per request.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries of idempotent requests.")
    page_size: int = Field(default=500, ge=1, le=1000, description="Hosts per page when listing.")
    audit_log: str | None = Field(
        default="~/.opsflow/audit.jsonl", description="JSON-lines audit file, or empty for none."
    )

    def get_client(self) -> OpsPlatformClient:
        """A ready client: token resolved (from Vault if so configured), TLS and audit set."""
        if self.token is not None:
            token = self.token.get_secret_value()
        elif self.token_from_vault is not None:
            token = self.token_from_vault.get().get_secret_value()
        else:
            raise ConfigurationError(
                "ops platform block has no token: set token or token_from_vault"
            )
        return OpsPlatformClient(
            self.url,
            token,
            auth_scheme=self.auth_scheme,
            page_size=self.page_size,
            timeout=self.timeout,
            verify=tls_verify("ops platform", self.ca_cert, self.verify_tls),
            retries=self.retries,
            audit_log=AuditLog(self.audit_log) if self.audit_log else None,
        )
