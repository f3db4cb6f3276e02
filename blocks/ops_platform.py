"""The ops platform block: where the platform is and where its token comes from."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.blocks.docs import code_example, docs_url
from opsflow.blocks.transport import client_transport, transport_field
from opsflow.blocks.vault import VaultSecret, credential, from_vault_field
from opsflow.opsapi.platform import OpsPlatformClient
from opsflow.opsapi.transport import Transport

# One audit log per platform (its host and port), so a lab's calls and a real platform's never
# mix in one file; a path without "{platform}" is used as it is.
AUDIT_LOG = "~/.opsflow/audit/{platform}.jsonl"


class OpsPlatform(ExecutionBackendBlock):
    """An ops platform (hosts and jobs API) and its credentials.

    The token is either stored here as a secret or, better, read from Vault at run time.

    Example:
        >>> platform = OpsPlatform.load("lab")                                 # doctest: +SKIP
        >>> platform.get_client().list_hosts(tag="web")                        # doctest: +SKIP
    """

    _block_type_name = "Ops Platform"
    _description = (
        "An ops platform speaking the hosts-and-jobs REST API: its URL, its token (stored or "
        "read from Vault) and transport settings."
    )
    _documentation_url = docs_url("blocks")
    _code_example = code_example("OpsPlatform", 'print({var}.get_client().list_hosts(tag="web"))')

    url: str = Field(description="Root URL of the platform, e.g. https://ops.example.com.")
    token: SecretStr | None = Field(
        default=None, description="API token, when it is not read from Vault."
    )
    token_from_vault: VaultSecret | None = from_vault_field("API token")
    auth_scheme: Literal["Token", "Bearer"] = Field(
        default="Token", description="Authorization scheme: Token or Bearer."
    )
    page_size: int = Field(default=500, ge=1, le=1000, description="Hosts per page when listing.")
    transport: Transport = transport_field(audit_log=AUDIT_LOG)

    def get_client(self) -> OpsPlatformClient:
        """A ready client: token resolved (from Vault if so configured), TLS and audit set."""
        return OpsPlatformClient(
            self.url,
            credential(self, "token"),  # type: ignore[arg-type]
            auth_scheme=self.auth_scheme,
            page_size=self.page_size,
            transport=client_transport("ops platform", self._with_audit_log_named()),
        )

    def _with_audit_log_named(self) -> Transport:
        """The transport, its audit log's "{platform}" replaced by this platform's host_port.

        Example:
            >>> OpsPlatform(url="https://ops.example.com")._with_audit_log_named().audit_log
            '~/.opsflow/audit/ops.example.com_443.jsonl'
        """
        path = self.transport.audit_log
        if not path or "{platform}" not in path:
            return self.transport
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        name = re.sub(r"[^A-Za-z0-9.-]", "_", f"{parts.hostname or 'platform'}_{port}")
        return self.transport.model_copy(update={"audit_log": path.replace("{platform}", name)})
