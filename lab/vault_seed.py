"""Seed the lab's OpenBao: the lab's secrets at KV v2 paths, an AppRole per runbook role that
reads only its runbooks' secrets, and a JWT role (the lab's own issuer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import hvac
import requests

if TYPE_CHECKING:
    from opsflow.lab.config import LabConfig

SECRET_PATH = "opsflow/platform"
READONLY_SECRET_PATH = "opsflow/platform-readonly"
SALT_SECRET_PATH = "opsflow/salt"
POLICY_NAME = ROLE_NAME = "opsflow-runbook"
REPORT_ROLE = "opsflow-report"
# Each runbook role reads only the secrets its runbooks use, and nothing else: the runbooks
# that act (restart, disk clean-up, run a command, register hosts) read the platform token and
# the salt-api password; the report runbook reads only a read-only platform token, so its
# credentials cannot change anything.
ROLE_SECRETS = {
    ROLE_NAME: (SECRET_PATH, SALT_SECRET_PATH),
    REPORT_ROLE: (READONLY_SECRET_PATH,),
}


def policy(role: str) -> str:
    """The role's policy: `read` on each of its secrets (KV v2), nothing else."""
    return "".join(
        f'path "secret/data/{path}" {{\n  capabilities = ["read"]\n}}\n'
        for path in ROLE_SECRETS[role]
    )


def seed_vault(
    config: LabConfig,
    root_token: str,
    secrets: dict[str, dict[str, str]],
    new_secret_id: bool,
) -> dict[str, dict[str, str]]:
    """Write `secrets` (path -> key/values), then for each runbook role its least-privilege
    policy and AppRole; return role -> role id and secret id (kept in 0600 files)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(config.vault_ca_cert)  # hvac prefers the session's verify
    client = hvac.Client(
        url=config.vault_url, token=root_token, verify=str(config.vault_ca_cert), session=session
    )
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    for path, values in secrets.items():
        client.secrets.kv.v2.create_or_update_secret(path=path, secret=values, mount_point="secret")
    credentials = {}
    for role in ROLE_SECRETS:
        client.sys.create_or_update_policy(name=role, policy=policy(role))
        client.auth.approle.create_or_update_approle(
            role, token_policies=[role], token_ttl="1h", token_max_ttl="4h"
        )
        stored = approle_file(config, role)
        if new_secret_id or not stored.exists():
            role_id = client.auth.approle.read_role_id(role)["data"]["role_id"]
            secret_id = client.auth.approle.generate_secret_id(role)["data"]["secret_id"]
            stored.touch(mode=0o600)
            stored.write_text(json.dumps({"role_id": role_id, "secret_id": secret_id}))
        credentials[role] = json.loads(stored.read_text())
    _seed_jwt(client, config)
    return credentials


def approle_file(config: LabConfig, role: str) -> Path:
    """Where the lab keeps the role's AppRole credentials."""
    return config.dir / ("approle.json" if role == ROLE_NAME else f"approle-{role}.json")


def stored_approles(config: LabConfig) -> dict[str, dict[str, str]]:
    """role -> role id and secret id, as `seed_vault` last wrote them."""
    return {role: json.loads(approle_file(config, role).read_text()) for role in ROLE_SECRETS}


def _seed_jwt(client: hvac.Client, config: LabConfig) -> None:
    """The `jwt` method trusting the lab's issuer, and a role for the runbooks' service account
    (audience `opsflow`, subject bound) with the same least-privilege policy as the AppRole."""
    from opsflow.lab.jwt_issuer import AUDIENCE, ISSUER, SERVICE_ACCOUNT, JWTIssuer

    if "jwt/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("jwt")
    issuer = JWTIssuer(config.dir / "jwt")
    client.auth.jwt.configure(
        jwt_validation_pubkeys=[issuer.public_pem], bound_issuer=ISSUER, path="jwt"
    )
    client.auth.jwt.create_role(
        name=ROLE_NAME,
        role_type="jwt",
        allowed_redirect_uris=[],  # OIDC only; hvac asks for it anyway
        bound_audiences=[AUDIENCE],
        user_claim="sub",
        bound_subject=SERVICE_ACCOUNT,
        token_policies=[POLICY_NAME],
        token_ttl="1h",
        path="jwt",
    )
