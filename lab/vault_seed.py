"""Seed the lab's OpenBao: the platform token at a KV v2 path, and an AppRole and a JWT role
(the lab's own issuer) that can read only the runbooks' secrets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import hvac
import requests

if TYPE_CHECKING:
    from opsflow.lab.stack import LabConfig

SECRET_PATH = "opsflow/platform"
SALT_SECRET_PATH = "opsflow/salt"
POLICY_NAME = "opsflow-runbook"
ROLE_NAME = "opsflow-runbook"
POLICY = f"""
# Runbooks may read the platform token and the salt-api password, and nothing else.
path "secret/data/{SECRET_PATH}" {{
  capabilities = ["read"]
}}
path "secret/data/{SALT_SECRET_PATH}" {{
  capabilities = ["read"]
}}
"""


def seed_vault(
    config: LabConfig,
    root_token: str,
    platform_token: str,
    new_secret_id: bool,
    salt_password: str | None = None,
) -> dict[str, str]:
    """Write the secrets, the least-privilege policy and the AppRole; return role and secret
    id."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(config.vault_ca_cert)  # hvac prefers the session's verify
    client = hvac.Client(
        url=config.vault_url, token=root_token, verify=str(config.vault_ca_cert), session=session
    )
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    client.secrets.kv.v2.create_or_update_secret(
        path=SECRET_PATH, secret={"token": platform_token}, mount_point="secret"
    )
    if salt_password:
        client.secrets.kv.v2.create_or_update_secret(
            path=SALT_SECRET_PATH, secret={"password": salt_password}, mount_point="secret"
        )
    client.sys.create_or_update_policy(name=POLICY_NAME, policy=POLICY)
    _seed_jwt(client, config)
    client.auth.approle.create_or_update_approle(
        ROLE_NAME, token_policies=[POLICY_NAME], token_ttl="1h", token_max_ttl="4h"
    )
    role_id = client.auth.approle.read_role_id(ROLE_NAME)["data"]["role_id"]
    stored = config.dir / "approle.json"
    if new_secret_id or not stored.exists():
        secret_id = client.auth.approle.generate_secret_id(ROLE_NAME)["data"]["secret_id"]
        stored.touch(mode=0o600)
        stored.write_text(json.dumps({"role_id": role_id, "secret_id": secret_id}))
    return json.loads(stored.read_text())


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
