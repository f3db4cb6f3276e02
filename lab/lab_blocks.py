"""The Prefect blocks that point at the lab (`save_lab_blocks`), saved by `opsflow lab up`."""

from __future__ import annotations

from opsflow.lab.config import LabConfig


def save_lab_blocks(config: LabConfig, credentials: dict[str, dict[str, str]]) -> None:
    """Save the Prefect blocks that point at the lab, all named `config.block_name`; and, named
    `<block_name>-report`, the Vault connection and platform of the report role (a read-only
    platform token), for runbooks that only read."""
    from pydantic import SecretStr

    from opsflow.blocks import Alertmanager, OpsPlatform, Prometheus, VaultConnection, VaultSecret
    from opsflow.lab.vault_seed import READONLY_SECRET_PATH, REPORT_ROLE, ROLE_NAME, SECRET_PATH
    from opsflow.opsapi.transport import Transport

    name = config.block_name

    def vault_for(role: str, block_name: str) -> VaultConnection:
        vault = VaultConnection(
            url=config.vault_url,
            auth_method="approle",
            role_id=credentials[role]["role_id"],
            secret_id=SecretStr(credentials[role]["secret_id"]),
            transport=Transport(timeout=10, ca_cert=str(config.vault_ca_cert)),
        )
        vault.save(block_name, overwrite=True)
        return vault

    def platform_for(vault: VaultConnection, path: str, block_name: str) -> None:
        token_ref = VaultSecret(vault=vault, path=path, key="token")
        token_ref.save(block_name, overwrite=True)
        OpsPlatform(
            url=config.platform_url,
            token_from_vault=token_ref,
            transport=Transport(ca_cert=str(config.ca_cert), audit_log=str(config.audit_log)),
        ).save(block_name, overwrite=True)

    vault = vault_for(ROLE_NAME, name)
    platform_for(vault, SECRET_PATH, name)
    platform_for(vault_for(REPORT_ROLE, f"{name}-report"), READONLY_SECRET_PATH, f"{name}-report")
    Prometheus(url=config.prometheus_url).save(name, overwrite=True)
    Alertmanager(url=config.alertmanager_url).save(name, overwrite=True)
    if config.salt:
        from opsflow.blocks import SaltAPI
        from opsflow.lab.salt import SALT_USER
        from opsflow.lab.vault_seed import SALT_SECRET_PATH

        password_ref = VaultSecret(vault=vault, path=SALT_SECRET_PATH, key="password")
        SaltAPI(
            url=config.salt_api_url,
            username=SALT_USER,
            password_from_vault=password_ref,
            eauth="file",
            address_grain="opsflow_ip",
            tags_grain="roles",
        ).save(name, overwrite=True)
