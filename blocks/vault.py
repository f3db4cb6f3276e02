"""Vault blocks: a connection (address, auth method, TLS) and a reference to one secret."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from prefect.blocks.core import Block
from prefect.runtime import flow_run
from pydantic import Field, SecretStr

from opsflow.blocks.docs import code_example, docs_url
from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.transport import client_transport, transport_field
from opsflow.opsapi.errors import ConfigurationError
from opsflow.opsapi.transport import Transport
from opsflow.opsapi.vault import (
    AppRoleAuth,
    JWTAuth,
    TokenAuth,
    UserpassAuth,
    VaultAuth,
    VaultClient,
)

T = TypeVar("T")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class _PerRunCache:
    """Vault clients and secret values shared by every task of one flow run in this process.

    One login and one read per secret per run, however many tasks use it; a new run starts
    empty. Outside a flow run nothing is cached.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a secret's read makes the client under the same lock
        self._run: str | None = None
        self._items: dict[tuple[str, ...], object] = {}

    def get(self, key: tuple[str, ...], make: Callable[[], T]) -> T:
        run = flow_run.get_id()
        if run is None:
            return make()
        with self._lock:
            if run != self._run:
                self._run, self._items = run, {}
            if key not in self._items:
                self._items[key] = make()
            return self._items[key]  # type: ignore[return-value]


_per_run = _PerRunCache()
_reading_jwt = threading.local()  # connections reading their own JWT now (to refuse a loop)


class VaultConnection(StrictBlock):
    """How to reach and log in to Vault or OpenBao.

    Example:
        >>> vault = VaultConnection.load("lab")                       # doctest: +SKIP
        >>> vault.get_client().read_secret("opsflow/platform")       # doctest: +SKIP
    """

    _block_type_name = "Vault Connection"
    _description = (
        "How to reach and log in to Vault or OpenBao: address, auth method (token, AppRole, "
        "userpass, JWT such as a Kubernetes service-account token), namespace and transport "
        "settings."
    )
    _documentation_url = docs_url("blocks")
    _code_example = code_example(
        "VaultConnection", 'print({var}.get_client().read_secret("opsflow/platform").keys())'
    )

    url: str = Field(description="Vault's address, e.g. https://vault.example.com:8200.")
    auth_method: Literal["token", "approle", "userpass", "jwt"] = Field(
        default="approle", description="How to log in: token, approle, userpass or jwt."
    )
    token: SecretStr | None = Field(default=None, description="Token, for the token method.")
    role_id: str | None = Field(default=None, description="AppRole role id, for approle.")
    secret_id: SecretStr | None = Field(default=None, description="AppRole secret id, for approle.")
    approle_mount: str = Field(default="approle", description="Mount point of the AppRole method.")
    username: str | None = Field(default=None, description="User name, for userpass.")
    password: SecretStr | None = Field(default=None, description="Password, for userpass.")
    userpass_mount: str = Field(default="userpass", description="Mount point of userpass.")
    jwt_role: str | None = Field(default=None, description="Role of the jwt method, for jwt.")
    jwt_path: str = Field(
        default=SERVICE_ACCOUNT_TOKEN,
        description="File holding the JWT, re-read at every login (projected tokens rotate); "
        "by default the Kubernetes service-account token.",
    )
    jwt_env: str | None = Field(
        default=None,
        description="Environment variable holding the JWT instead of the file (e.g. a CI "
        "system's OIDC token).",
    )
    jwt_vault_secret: str | None = Field(
        default=None,
        description="Name of a Vault Secret block holding the JWT, read through that block's "
        "own connection at each login (e.g. a token another Vault issues), instead of the "
        "file.",
    )
    jwt_mount: str = Field(default="jwt", description="Mount point of the jwt method.")
    namespace: str | None = Field(default=None, description="Vault namespace, if any.")
    transport: Transport = transport_field(timeout=10.0)

    def _auth(self) -> VaultAuth:
        def need(field: str, value: object) -> None:
            if not value:
                raise ConfigurationError(
                    f"Vault connection: auth_method {self.auth_method!r} needs {field}; "
                    f"set it on the block"
                )

        if self.auth_method == "token":
            need("token", self.token and self.token.get_secret_value())
            return TokenAuth(self.token.get_secret_value())  # type: ignore[union-attr]
        if self.auth_method == "approle":
            need("role_id", self.role_id)
            need("secret_id", self.secret_id and self.secret_id.get_secret_value())
            return AppRoleAuth(
                self.role_id,  # type: ignore[arg-type]
                self.secret_id.get_secret_value(),  # type: ignore[union-attr]
                mount_point=self.approle_mount,
            )
        if self.auth_method == "jwt":
            need("jwt_role", self.jwt_role)
            return JWTAuth(self.jwt_role, self._read_jwt, mount_point=self.jwt_mount)  # type: ignore[arg-type]
        need("username", self.username)
        need("password", self.password and self.password.get_secret_value())
        return UserpassAuth(
            self.username,  # type: ignore[arg-type]
            self.password.get_secret_value(),  # type: ignore[union-attr]
            mount_point=self.userpass_mount,
        )

    def _read_jwt(self) -> str:
        """The JWT, read now: from `jwt_env` when set, else through the `jwt_vault_secret`
        block when set, else from `jwt_path`."""
        if self.jwt_env:
            value = os.environ.get(self.jwt_env, "").strip()
            if not value:
                raise ConfigurationError(
                    f"Vault connection: jwt_env {self.jwt_env!r} is not set or empty"
                )
            return value
        if self.jwt_vault_secret:
            return self._jwt_from_vault(self.jwt_vault_secret)
        try:
            value = Path(self.jwt_path).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"Vault connection: cannot read the JWT at jwt_path {self.jwt_path!r}: "
                f"{exc.strerror}"
            ) from None
        if not value:
            raise ConfigurationError(f"Vault connection: the JWT file {self.jwt_path!r} is empty")
        return value

    def _jwt_from_vault(self, name: str) -> str:
        """The JWT in the Vault Secret block `name`; refused when reading it would need this
        very login (a block that reads through this connection)."""
        reading = _reading_jwt.__dict__.setdefault("fingerprints", set())
        me = self.fingerprint()
        if me in reading:
            raise ConfigurationError(
                f"Vault connection: jwt_vault_secret {name!r} is read through this same "
                "connection, which needs the JWT to log in: give it a secret read through "
                "another connection"
            )
        try:
            secret = VaultSecret.load(name)
        except ValueError:
            raise ConfigurationError(
                f"Vault connection: jwt_vault_secret {name!r} is not a saved Vault Secret "
                "block: save one, or fix the name"
            ) from None
        reading.add(me)
        try:
            return secret.get().get_secret_value().strip()
        finally:
            reading.discard(me)

    def fingerprint(self) -> str:
        """Identifies this connection and its credentials (hashed) for the per-run cache."""
        secret = next(
            (v.get_secret_value() for v in (self.token, self.secret_id, self.password) if v), ""
        )
        parts = (
            self.url,
            self.auth_method,
            self.role_id or "",
            self.username or "",
            self.jwt_role or "",
            self.jwt_vault_secret or "",
            self.namespace or "",
            hashlib.sha256(secret.encode()).hexdigest(),
        )
        return "|".join(parts)

    def get_client(self) -> VaultClient:
        """A Vault client that logs in on first use."""
        return VaultClient(
            self.url,
            self._auth(),
            namespace=self.namespace,
            transport=client_transport("Vault", self.transport),
        )


class VaultSecret(StrictBlock):
    """One key of one secret in Vault: where a credential lives, never the credential itself.

    Example:
        >>> ref = VaultSecret(vault=VaultConnection.load("lab"), path="opsflow/platform",
        ...                   key="token")                          # doctest: +SKIP
        >>> ref.get().get_secret_value()                            # doctest: +SKIP
    """

    _block_type_name = "Vault Secret"
    _description = "A reference to one key of a KV v1 or v2 secret in Vault: never the secret."
    _documentation_url = docs_url("blocks")
    _code_example = code_example("VaultSecret", "token = {var}.get().get_secret_value()")

    vault: VaultConnection = Field(description="The Vault connection to read through.")
    path: str = Field(description="Secret path below the mount point, e.g. opsflow/platform.")
    key: str = Field(default="token", description="Key within the secret.")
    mount_point: str = Field(default="secret", description="Mount point of the KV engine.")
    kv_version: Literal[1, 2] = Field(default=2, description="KV engine version, 1 or 2.")
    version: int | None = Field(
        default=None,
        ge=1,
        description="KV v2 only: pin this version of the secret (empty: newest).",
    )

    def get(self) -> SecretStr:
        """The secret, wrapped as a SecretStr: read once per flow run (logging in first)."""
        connection = self.vault.fingerprint()
        key = (
            connection,
            self.mount_point,
            self.path,
            self.key,
            str(self.kv_version),
            str(self.version or ""),
        )

        def read() -> SecretStr:
            client = _per_run.get((connection,), self.vault.get_client)
            return SecretStr(
                client.read_secret_key(
                    self.path,
                    self.key,
                    mount_point=self.mount_point,
                    kv_version=self.kv_version,
                    version=self.version,
                )
            )

        return _per_run.get(key, read)


def credential(block: Block, field: str, required: bool = True) -> str | None:
    """A block's credential `field`: the one stored on the block, else the one read from Vault
    through its `<field>_from_vault` reference (once per flow run). Every block that holds a
    secret offers both, and resolves them here.

    Raises:
        ConfigurationError: `required`, and neither is set.
    """
    stored = getattr(block, field)
    if stored is not None and stored.get_secret_value():
        return stored.get_secret_value()
    reference = getattr(block, f"{field}_from_vault")
    if reference is not None:
        return reference.get().get_secret_value()
    if required:
        raise ConfigurationError(
            f"{block.get_block_type_name()} block has no {field}: set {field} or {field}_from_vault"
        )
    return None


def from_vault_field(field: str) -> Any:
    """The `<field>_from_vault` companion of a secret field."""
    return Field(default=None, description=f"Where in Vault to read the {field}, instead.")
