"""A secret read inside an OpenBao namespace (OpenBao 2.3+ has them; the lab runs 2.7): the
block's `namespace` logs in and reads there, and the same path outside it is another secret."""

from __future__ import annotations

import uuid

import hvac
import pytest
import requests
from pydantic import SecretStr

from opsflow.blocks import VaultConnection, VaultSecret
from opsflow.opsapi import Transport, VaultRefused
from tests.conftest import Lab


def root_client(lab: Lab, namespace: str | None = None) -> hvac.Client:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(lab.config.vault_ca_cert)
    return hvac.Client(
        url=lab.config.vault_url,
        token=lab.secrets["vault_root_token"],
        session=session,
        namespace=namespace,
    )


@pytest.fixture
def team_namespace(lab: Lab) -> dict[str, str]:
    """A namespace with its own KV v2 mount, secret, policy and AppRole."""
    name = f"team-{uuid.uuid4().hex[:6]}"
    root_client(lab).sys.create_namespace(name)
    inside = root_client(lab, name)
    inside.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    inside.secrets.kv.v2.create_or_update_secret(
        path="opsflow/platform", secret={"token": f"in-{name}"}, mount_point="secret"
    )
    inside.sys.create_or_update_policy(
        name="reader", policy='path "secret/data/opsflow/platform" { capabilities = ["read"] }'
    )
    inside.sys.enable_auth_method("approle")
    inside.auth.approle.create_or_update_approle("reader", token_policies=["reader"])
    role_id = inside.auth.approle.read_role_id("reader")["data"]["role_id"]
    secret_id = inside.auth.approle.generate_secret_id("reader")["data"]["secret_id"]
    return {"name": name, "role_id": role_id, "secret_id": secret_id}


def connection(lab: Lab, team: dict[str, str], namespace: str | None) -> VaultConnection:
    return VaultConnection(
        url=lab.config.vault_url,
        namespace=namespace,
        role_id=team["role_id"],
        secret_id=SecretStr(team["secret_id"]),
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
    )


def test_a_secret_is_read_inside_the_blocks_namespace(lab, team_namespace):
    vault = connection(lab, team_namespace, team_namespace["name"])
    secret = VaultSecret(vault=vault, path="opsflow/platform", key="token")
    assert secret.get().get_secret_value() == f"in-{team_namespace['name']}"
    # The root namespace's secret at the same path is another one.
    assert secret.get().get_secret_value() != lab.secrets["platform_token"]


def test_the_namespaces_approle_does_not_log_in_outside_it(lab, team_namespace):
    vault = connection(lab, team_namespace, None)
    with pytest.raises(VaultRefused, match="approle auth"):
        VaultSecret(vault=vault, path="opsflow/platform", key="token").get()
