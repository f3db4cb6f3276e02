"""The SaltStack block: salt-api's address, its eauth login, and the grains opsflow reads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.blocks.docs import code_example, docs_url
from opsflow.blocks.transport import client_transport, transport_field
from opsflow.blocks.vault import VaultSecret, credential, from_vault_field
from opsflow.opsapi.salt import SaltAPIClient
from opsflow.opsapi.transport import Transport


class SaltAPI(ExecutionBackendBlock):
    """SaltStack through salt-api (rest_cherrypy): minions are the hosts, Salt jobs the jobs.

    The password is stored here as a secret or, better, read from Vault at run time.

    Example:
        >>> salt = SaltAPI.load("lab")                                          # doctest: +SKIP
        >>> [h.hostname for h in salt.get_client().list_hosts(tag="web")]       # doctest: +SKIP
    """

    _block_type_name = "Salt API"
    _description = (
        "SaltStack through salt-api: its URL, the eauth user and password (stored or read from "
        "Vault), and the grains holding each minion's address and roles."
    )
    _documentation_url = docs_url("execution-backends")
    _code_example = code_example("SaltAPI", 'print({var}.get_client().list_hosts(tag="web"))')

    url: str = Field(description="Root URL of salt-api, e.g. https://salt-master:8000.")
    username: str = Field(description="The eauth user opsflow logs in as.")
    password: SecretStr | None = Field(
        default=None, description="Its password, when it is not read from Vault."
    )
    password_from_vault: VaultSecret | None = from_vault_field("password")
    eauth: Literal["file", "sharedsecret", "ldap", "pam", "auto"] = Field(
        default="pam", description="The master's external_auth backend for this user."
    )
    address_grain: str = Field(
        default="ipv4",
        description="Grain holding a minion's address, joined with Prometheus' instance.",
    )
    tags_grain: str = Field(
        default="roles", description="Grain holding a minion's roles (its tags)."
    )
    transport: Transport = transport_field()

    def get_client(self) -> SaltAPIClient:
        """A ready client: password resolved (from Vault if so configured), TLS set."""
        return SaltAPIClient(
            self.url,
            self.username,
            credential(self, "password"),  # type: ignore[arg-type]
            eauth=self.eauth,
            address_grain=self.address_grain,
            tags_grain=self.tags_grain,
            transport=client_transport("salt-api", self.transport),
        )
