"""KV v2 versions: a reference can pin one; a deleted or destroyed version is a clear error,
never an empty secret."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from opsflow.blocks import VaultConnection, VaultSecret
from opsflow.opsapi import ConfigurationError, Transport, VaultRefused
from tests.test_vault_renewal import root_client


@pytest.fixture
def versions(lab) -> tuple[VaultConnection, str]:
    """A secret with three versions: one-1, two-2, three-3."""
    path = f"opsflow/versioned-{uuid.uuid4().hex[:6]}"
    root = root_client(lab)
    for value in ("one-1", "two-2", "three-3"):
        root.secrets.kv.v2.create_or_update_secret(path=path, secret={"token": value})
    vault = VaultConnection(
        url=lab.config.vault_url,
        auth_method="token",
        token=SecretStr(lab.secrets["vault_root_token"]),
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
    )
    return vault, path


def test_a_pinned_version_is_read_and_unpinned_is_the_newest(versions):
    vault, path = versions
    assert VaultSecret(vault=vault, path=path).get().get_secret_value() == "three-3"
    assert VaultSecret(vault=vault, path=path, version=1).get().get_secret_value() == "one-1"


def test_a_deleted_or_destroyed_version_is_a_clear_error(lab, versions):
    vault, path = versions
    root = root_client(lab)
    root.secrets.kv.v2.delete_secret_versions(path=path, versions=[2])
    root.secrets.kv.v2.destroy_secret_versions(path=path, versions=[1])

    with pytest.raises(
        VaultRefused, match=rf"secret 'secret/{path} version 2' \(KV v2\) was deleted; undelete it"
    ):
        VaultSecret(vault=vault, path=path, version=2).get()
    with pytest.raises(VaultRefused, match=rf"'secret/{path} version 1' \(KV v2\) was destroyed"):
        VaultSecret(vault=vault, path=path, version=1).get()


def test_a_version_needs_kv_v2(versions):
    vault, path = versions
    with pytest.raises(ConfigurationError, match="only with KV v2"):
        VaultSecret(vault=vault, path=path, kv_version=1, version=1).get()
