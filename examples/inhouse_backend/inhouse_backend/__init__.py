"""opsflow's execution backend for the in-house ops API: the block a runbook's `platform` takes.

The package's `prefect.collections` entry point names this module, so every Prefect process
(the command line, a worker, the alert receiver, `opsflow deploy`) knows the block type.

Example:
    >>> from inhouse_backend import InHousePlatform
    >>> InHousePlatform(url="https://ops.corp", api_key="k-123456").get_client().name
    'in-house platform'
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from inhouse_backend.client import InHouseClient
from opsflow.blocks import ExecutionBackendBlock, VaultSecret, from_vault_field, transport_field
from opsflow.opsapi import Transport

__all__ = ["InHouseClient", "InHousePlatform"]


class InHousePlatform(ExecutionBackendBlock):
    """The in-house ops API: its URL and API key (stored, or read from Vault at run time)."""

    _block_type_name = "In-House Platform"
    _description = "The company's own ops API (machines and tasks), as an opsflow backend."

    url: str = Field(description="Root URL of the API, e.g. https://ops.corp.example.")
    api_key: SecretStr | None = Field(default=None, description="API key, if not from Vault.")
    api_key_from_vault: VaultSecret | None = from_vault_field("API key")
    transport: Transport = transport_field()

    def get_client(self) -> InHouseClient:
        return InHouseClient(self.url, self.resolve_secret("api_key"), self.checked_transport())
