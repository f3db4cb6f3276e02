"""Prometheus and Alertmanager blocks."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from opsflow.blocks.tls import tls_verify
from opsflow.opsapi.alertmanager import AlertmanagerClient
from opsflow.opsapi.prometheus import PrometheusClient


class Prometheus(Block):
    """A Prometheus server to query.

    Example:
        >>> Prometheus.load("lab").get_client().query("up")          # doctest: +SKIP
    """

    _block_type_name = "Prometheus"
    _description = "A Prometheus server's URL, optional bearer token and TLS settings."

    url: str = Field(default="http://127.0.0.1:9090", description="Root URL of Prometheus.")
    bearer_token: SecretStr | None = Field(
        default=None, description="Token for a Prometheus behind an auth proxy."
    )
    ca_cert: str | None = Field(default=None, description="Path of the CA bundle for its TLS.")
    verify_tls: bool = Field(default=True, description="Verify Prometheus' certificate.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per query.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries of failed queries.")

    def get_client(self) -> PrometheusClient:
        """A ready Prometheus client."""
        return PrometheusClient(
            self.url,
            bearer_token=self.bearer_token.get_secret_value() if self.bearer_token else None,
            timeout=self.timeout,
            verify=tls_verify("Prometheus", self.ca_cert, self.verify_tls),
            retries=self.retries,
        )


class Alertmanager(Block):
    """An Alertmanager for silences during maintenance.

    Example:
        >>> Alertmanager.load("lab").get_client().list_silences()     # doctest: +SKIP
    """

    _block_type_name = "Alertmanager"
    _description = "An Alertmanager's URL and TLS settings, for silences during rollouts."

    url: str = Field(default="http://127.0.0.1:9093", description="Root URL of Alertmanager.")
    ca_cert: str | None = Field(default=None, description="Path of the CA bundle for its TLS.")
    verify_tls: bool = Field(default=True, description="Verify Alertmanager's certificate.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per request.")

    def get_client(self) -> AlertmanagerClient:
        """A ready Alertmanager client."""
        return AlertmanagerClient(
            self.url,
            timeout=self.timeout,
            verify=tls_verify("Alertmanager", self.ca_cert, self.verify_tls),
        )
