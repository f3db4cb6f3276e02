"""Credentials from Vault (OpenBao): AppRole, userpass, token; KV v1 and v2; clear errors."""

from __future__ import annotations

import hvac
import pytest
import requests
from pydantic import SecretStr

from opsflow.blocks import OpsPlatform, VaultConnection, VaultSecret
from opsflow.opsapi import ConfigurationError, ConnectionFailed, Transport, VaultRefused


def root_client(lab) -> hvac.Client:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(lab.config.vault_ca_cert)
    return hvac.Client(
        url=lab.config.vault_url, token=lab.secrets["vault_root_token"], session=session
    )


def test_platform_token_comes_from_vault_through_approle(lab):
    platform = OpsPlatform.load("lab")

    assert platform.token is None
    assert platform.token_from_vault.vault.auth_method == "approle"
    assert platform.token_from_vault.get().get_secret_value() == lab.secrets["platform_token"]
    assert platform.get_client().list_hosts()


def test_wrong_secret_id_is_a_clear_error_without_hvac_internals(lab):
    vault = VaultConnection.load("lab")
    vault.secret_id = SecretStr("wrong-secret-id-0123456789")

    with pytest.raises(VaultRefused) as caught:
        VaultSecret(vault=vault, path="opsflow/platform").get()

    message = str(caught.value)
    assert "approle auth" in message and "role_id and secret_id" in message
    assert "wrong-secret-id-0123456789" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_path_outside_the_policy_is_denied_naming_the_path(lab):
    root_client(lab).secrets.kv.v2.create_or_update_secret(
        path="payments/db", secret={"password": "not-for-runbooks"}
    )

    with pytest.raises(VaultRefused, match=r"denied reading 'secret/payments/db'") as caught:
        VaultSecret(vault=VaultConnection.load("lab"), path="payments/db", key="password").get()

    assert "not-for-runbooks" not in str(caught.value)


def test_missing_path_and_missing_key_are_named(lab):
    ref = VaultSecret(vault=VaultConnection.load("lab"), path="opsflow/platform", key="nope")
    with pytest.raises(VaultRefused, match=r"has no key 'nope' \(keys: \['token'\]\)"):
        ref.get()

    root = VaultConnection(
        url=lab.config.vault_url,
        auth_method="token",
        token=SecretStr(lab.secrets["vault_root_token"]),
        transport=Transport(ca_cert=str(lab.config.vault_ca_cert)),
    )
    with pytest.raises(VaultRefused, match=r"no secret at 'secret/opsflow/absent'"):
        VaultSecret(vault=root, path="opsflow/absent").get()


def test_userpass_login_reads_the_token(lab):
    root = root_client(lab)
    if "userpass/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("userpass")
    root.auth.userpass.create_or_update_user(
        "runbook", "pass-word-42", policies=["opsflow-runbook"]
    )
    vault = VaultConnection(
        url=lab.config.vault_url,
        auth_method="userpass",
        username="runbook",
        password=SecretStr("pass-word-42"),
        transport=Transport(ca_cert=str(lab.config.vault_ca_cert)),
    )

    assert (
        VaultSecret(vault=vault, path="opsflow/platform").get().get_secret_value()
        == lab.secrets["platform_token"]
    )


def test_token_auth_and_kv_version_1(lab):
    root = root_client(lab)
    if "kv1/" not in root.sys.list_mounted_secrets_engines()["data"]:
        root.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    root.secrets.kv.v1.create_or_update_secret(
        "ops/api", {"token": "v1-token-value"}, mount_point="kv1"
    )
    vault = VaultConnection(
        url=lab.config.vault_url,
        auth_method="token",
        token=SecretStr(lab.secrets["vault_root_token"]),
        transport=Transport(ca_cert=str(lab.config.vault_ca_cert)),
    )

    ref = VaultSecret(vault=vault, path="ops/api", mount_point="kv1", kv_version=1)

    assert ref.get().get_secret_value() == "v1-token-value"


def test_vault_without_its_ca_is_refused(lab):
    vault = VaultConnection.load("lab")
    vault.transport = Transport(timeout=10)

    with pytest.raises(ConnectionFailed, match="TLS verification of Vault failed"):
        VaultSecret(vault=vault, path="opsflow/platform").get()


def test_incomplete_block_names_the_missing_field():
    with pytest.raises(ConfigurationError, match="needs secret_id"):
        VaultConnection(
            url="https://vault.example:8200", auth_method="approle", role_id="r"
        ).get_client()


def vault_requests(lab, since: int) -> list[str]:
    """Paths of the requests OpenBao's audit device recorded after byte `since`."""
    import json

    with lab.config.vault_audit_log.open() as log:
        log.seek(since)
        entries = [json.loads(line) for line in log if line.strip()]
    return [e["request"]["path"] for e in entries if e.get("type") == "request"]


def test_one_login_and_one_read_per_run_however_many_tasks(fresh_lab):
    from opsflow.flows.runbooks.restart_overloaded_hosts import (
        RestartPolicy,
        restart_overloaded_hosts,
    )

    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02", "lab-web-03")
    start = fresh_lab.config.vault_audit_log.stat().st_size

    state = restart_overloaded_hosts(
        RestartPolicy(
            platform="lab",
            prometheus="lab",
            batch_size=1,
            poll_seconds=0.5,
            verify_window_seconds=30,
        ),
        return_state=True,
    )

    assert state.is_completed()
    paths = vault_requests(fresh_lab, start)
    assert paths.count("auth/approle/login") == 1
    assert paths.count("secret/data/opsflow/platform") == 1
    assert len(paths) == 2, paths
