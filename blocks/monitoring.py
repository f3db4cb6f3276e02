"""Prometheus and Alertmanager blocks."""

from __future__ import annotations

from pydantic import Field, SecretStr

from opsflow.blocks.docs import code_example, docs_url
from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.transport import client_transport, transport_field
from opsflow.blocks.vault import VaultSecret, credential, from_vault_field
from opsflow.opsapi.alertmanager import AlertmanagerClient
from opsflow.opsapi.prometheus import PrometheusClient
from opsflow.opsapi.transport import Transport


class Prometheus(StrictBlock):
    """A Prometheus server to query.

    Example:
        >>> Prometheus.load("lab").get_client().query("up")          # doctest: +SKIP
    """

    _block_type_name = "Prometheus"
    _description = "A Prometheus server's URL, optional bearer token and transport settings."
    _documentation_url = docs_url("blocks")
    _code_example = code_example("Prometheus", 'print({var}.get_client().query("up"))')

    url: str = Field(description="Root URL of Prometheus, e.g. http://prometheus:9090.")
    bearer_token: SecretStr | None = Field(
        default=None, description="Token for a Prometheus behind an auth proxy, if any."
    )
    bearer_token_from_vault: VaultSecret | None = from_vault_field("bearer token")
    transport: Transport = transport_field()

    def get_client(self) -> PrometheusClient:
        """A ready Prometheus client (its bearer token, if any, from Vault if so configured)."""
        return PrometheusClient(
            self.url,
            bearer_token=credential(self, "bearer_token", required=False),
            transport=client_transport("Prometheus", self.transport),
        )


class Alertmanager(StrictBlock):
    """An Alertmanager for silences during maintenance.

    Example:
        >>> Alertmanager.load("lab").get_client().list_silences()     # doctest: +SKIP
    """

    _block_type_name = "Alertmanager"
    _description = "An Alertmanager's URL and transport settings, for silences during rollouts."
    _documentation_url = docs_url("blocks")
    _code_example = code_example("Alertmanager", "print({var}.get_client().list_silences())")

    url: str = Field(description="Root URL of Alertmanager, e.g. http://alertmanager:9093.")
    transport: Transport = transport_field()

    def get_client(self) -> AlertmanagerClient:
        """A ready Alertmanager client."""
        return AlertmanagerClient(
            self.url, transport=client_transport("Alertmanager", self.transport)
        )
