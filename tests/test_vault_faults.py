"""Vault faults against the lab's real OpenBao: sealed, unreachable, token expired, denied.

A runbook never acts without its credential: when Vault cannot give it, the run fails before
the first call to the platform, saying what is wrong with Vault.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import hvac
import pytest
from hvac import exceptions as hvac_errors
from pydantic import SecretStr

from opsflow.blocks import VaultConnection, VaultSecret
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.lab.vault_seed import POLICY_NAME, SECRET_PATH
from opsflow.opsapi import Transport, VaultRefused
from opsflow.opsapi.vault import AppRoleAuth, VaultClient
from tests.conftest import free_ports, lab_platform_copy, wait_until
from tests.test_vault import root_client

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
}


@pytest.fixture
def sealed_vault(lab) -> Iterator[hvac.Client]:
    """The lab's OpenBao sealed for the test, unsealed (and checked) afterwards."""
    root = root_client(lab)
    key = lab.config.vault_unseal_key_file.read_text().strip()
    root.sys.seal()
    try:
        yield root
    finally:
        if root.sys.read_seal_status()["sealed"]:
            root.sys.submit_unseal_key(key)
        wait_until(lambda: not root.sys.read_seal_status()["sealed"], 30, "Vault to unseal")
        wait_until(
            lambda: VaultSecret(vault=VaultConnection.load("lab"), path=SECRET_PATH).get(),
            30,
            "Vault to serve the runbook secret again",
        )


def platform_block_with_vault_at(lab, url: str) -> str:
    """A copy of the lab's Ops Platform block whose token comes from Vault at `url`."""
    vault = VaultConnection.load("lab")
    elsewhere = VaultConnection(
        url=url, role_id=vault.role_id, secret_id=vault.secret_id, transport=vault.transport
    )
    lab_platform_copy(elsewhere).save("lab-vault-elsewhere", overwrite=True)
    return "lab-vault-elsewhere"


def assert_stopped_before_acting(lab, state, says: str) -> None:
    assert state.is_failed()
    assert says in state.message
    assert lab.jobs() == []
    assert lab.admin.restarts() == {}


def test_a_sealed_vault_stops_the_runbook_before_it_acts(fresh_lab, sealed_vault):
    fresh_lab.overload(8.0, "lab-web-01")

    state = restart_overloaded_hosts(RestartPolicy(**FAST), return_state=True)

    assert_stopped_before_acting(fresh_lab, state, "Vault is sealed or down")


def test_a_login_and_a_read_wait_out_vault_being_unsealed(lab, sealed_vault):
    """Sealed (503) is an answer Vault gives without acting: the login (a POST) and the read
    are retried with backoff until the operator has unsealed it."""
    key = lab.config.vault_unseal_key_file.read_text().strip()
    unseal = threading.Timer(2.0, sealed_vault.sys.submit_unseal_key, args=(key,))
    client = VaultClient(
        lab.config.vault_url,
        AppRoleAuth(lab.approle["role_id"], lab.approle["secret_id"]),
        transport=Transport(
            timeout=10, retries=6, backoff=0.5, ca_cert=str(lab.config.vault_ca_cert)
        ),
    )
    unseal.start()
    started = time.monotonic()
    try:
        secret = client.read_secret(SECRET_PATH)
    finally:
        unseal.join()  # unsealed before the fixture checks, whatever happened

    assert secret["token"] == lab.secrets["platform_token"]
    assert client.logins == 1
    assert time.monotonic() - started >= 1.5  # it waited for the unseal, it did not fail


def login_requests_since(lab, offset: int) -> list[dict]:
    with lab.config.vault_audit_log.open() as log:
        log.seek(offset)
        entries = [json.loads(line) for line in log if line.strip()]
    return [
        e
        for e in entries
        if e.get("type") == "request" and e["request"]["path"] == "auth/approle/login"
    ]


def test_a_refused_login_is_sent_once_and_never_retried(lab):
    offset = lab.config.vault_audit_log.stat().st_size
    client = VaultClient(
        lab.config.vault_url,
        AppRoleAuth(lab.approle["role_id"], "not-the-secret-id"),
        transport=Transport(
            timeout=10, retries=5, backoff=0.5, ca_cert=str(lab.config.vault_ca_cert)
        ),
    )

    with pytest.raises(VaultRefused, match="credentials were rejected"):
        client.login()

    assert len(login_requests_since(lab, offset)) == 1


def test_an_unreachable_vault_stops_the_runbook_before_it_acts(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    nowhere = f"https://127.0.0.1:{free_ports().vault}"

    state = restart_overloaded_hosts(
        RestartPolicy(**{**FAST, "platform": platform_block_with_vault_at(fresh_lab, nowhere)}),
        return_state=True,
    )

    assert_stopped_before_acting(fresh_lab, state, "cannot reach Vault while logging in")


def test_an_expired_token_is_replaced_by_one_new_login(lab):
    root = root_client(lab)
    root.auth.approle.create_or_update_approle(
        "opsflow-short-lived", token_policies=[POLICY_NAME], token_ttl="2s", token_max_ttl="2s"
    )
    vault = VaultConnection.load("lab")
    vault.role_id = root.auth.approle.read_role_id("opsflow-short-lived")["data"]["role_id"]
    vault.secret_id = SecretStr(
        root.auth.approle.generate_secret_id("opsflow-short-lived")["data"]["secret_id"]
    )
    client = vault.get_client()
    assert client.read_secret_key(SECRET_PATH, "token") == lab.secrets["platform_token"]
    first_token = client._hvac.token

    def expired() -> bool:
        try:
            root.auth.token.lookup(first_token)
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
            return True
        return False

    wait_until(expired, 30, "the short-lived token to expire")

    assert client.read_secret_key(SECRET_PATH, "token") == lab.secrets["platform_token"]
    assert client.logins == 2
    assert client._hvac.token != first_token


def expired(root: Any, token: str) -> bool:
    """Vault no longer knows the token (it answers its own root that it is bad)."""
    try:
        root.auth.token.lookup(token)
    except (hvac_errors.Forbidden, hvac_errors.InvalidRequest):
        return True
    return False


def test_an_expired_plain_token_cannot_log_in_again_and_says_so(lab):
    root = root_client(lab)
    token = root.auth.token.create(policies=[POLICY_NAME], ttl="2s")["auth"]["client_token"]
    vault = VaultConnection.load("lab")
    vault.auth_method, vault.token = "token", SecretStr(token)
    client = vault.get_client()
    client.read_secret_key(SECRET_PATH, "token")
    wait_until(lambda: expired(root, token), 10, "the 2 s token to expire")

    with pytest.raises(VaultRefused, match="denied reading 'secret/opsflow/platform'") as caught:
        client.read_secret_key(SECRET_PATH, "token")

    assert "or the token expired" in str(caught.value)
    assert token not in str(caught.value)


def runbook_token(lab) -> hvac.Client:
    """A client holding exactly what a runbook's AppRole login gets."""
    login = root_client(lab).auth.approle.login(
        role_id=lab.approle["role_id"], secret_id=lab.approle["secret_id"]
    )
    client = root_client(lab)
    client.token = login["auth"]["client_token"]
    return client


def test_the_runbook_policy_grants_reading_one_secret_and_nothing_else(lab):
    client = runbook_token(lab)
    paths = {
        f"secret/data/{SECRET_PATH}": ["read"],
        f"secret/metadata/{SECRET_PATH}": ["deny"],
        "secret/data/opsflow/other": ["deny"],
        "secret/data/payments/db": ["deny"],
        "sys/policies/acl/opsflow-runbook": ["deny"],
        "auth/approle/role/opsflow-runbook/secret-id": ["deny"],
        "sys/mounts": ["deny"],
    }

    answer = client.sys.get_capabilities(paths=list(paths))
    granted = {path: answer[path] for path in paths}

    assert granted == paths
    assert sorted(client.auth.token.lookup_self()["data"]["policies"]) == ["default", POLICY_NAME]


@pytest.mark.parametrize(
    ("what", "call"),
    [
        (
            "write its own secret",
            lambda c: c.secrets.kv.v2.create_or_update_secret(SECRET_PATH, secret={"token": "x"}),
        ),
        ("list secrets", lambda c: c.secrets.kv.v2.list_secrets("opsflow")),
        (
            "read another secret",
            lambda c: c.secrets.kv.v2.read_secret_version(
                "payments/db", raise_on_deleted_version=True
            ),
        ),
        ("mint itself a secret id", lambda c: c.auth.approle.generate_secret_id("opsflow-runbook")),
        ("read policies", lambda c: c.sys.read_policy(POLICY_NAME)),
        ("create a token", lambda c: c.auth.token.create(policies=["root"])),
    ],
)
def test_a_runbook_token_cannot(lab, what, call):
    root_client(lab).secrets.kv.v2.create_or_update_secret("payments/db", secret={"p": "x"})

    with pytest.raises(hvac.exceptions.Forbidden):
        call(runbook_token(lab))

    assert (
        VaultSecret(vault=VaultConnection.load("lab"), path=SECRET_PATH).get().get_secret_value()
        == lab.secrets["platform_token"]
    )
