"""A Vault token that lives 3 s (at most 7 s) across reads that go on for 16 s: renewed while
renewing extends it, a new login when its max TTL caps it, and never a read with an expired
token, as OpenBao's audit device records it."""

from __future__ import annotations

import json
import time
import uuid

import hvac
import requests
from pydantic import SecretStr

from opsflow.blocks import VaultConnection
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.lab.vault_seed import POLICY_NAME, SECRET_PATH
from opsflow.opsapi import Transport
from opsflow.opsapi.vault import AppRoleAuth, VaultClient
from tests.conftest import Lab, lab_platform_copy


def root_client(lab: Lab) -> hvac.Client:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(lab.config.vault_ca_cert)
    return hvac.Client(
        url=lab.config.vault_url, token=lab.secrets["vault_root_token"], session=session
    )


def audit(lab: Lab, role: str) -> dict[str, int]:
    """Logins, renewals (and renewals refused at the max TTL) and refused reads of tokens of
    `role`, from the audit log."""
    counts = {"logins": 0, "renewals": 0, "renewals refused": 0, "refused": 0}
    for line in lab.config.vault_audit_log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") != "response":
            continue
        path = entry["request"]["path"]
        response_auth = (entry.get("response") or {}).get("auth") or {}
        request_auth = entry.get("auth") or {}
        if path == "auth/approle/login":
            counts["logins"] += response_auth.get("metadata", {}).get("role_name") == role
        elif (request_auth.get("metadata") or {}).get("role_name") == role:
            renewal = path == "auth/token/renew-self"
            counts["renewals"] += renewal and not entry.get("error")
            counts["renewals refused"] += renewal and bool(entry.get("error"))
            counts["refused"] += not renewal and bool(entry.get("error"))
    return counts


def test_a_short_lived_token_is_renewed_then_replaced_and_never_used_expired(lab: Lab):
    role = f"short-{uuid.uuid4().hex[:6]}"
    root = root_client(lab)
    root.auth.approle.create_or_update_approle(
        role, token_policies=[POLICY_NAME], token_ttl="3s", token_max_ttl="7s"
    )
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    client = VaultClient(
        lab.config.vault_url,
        AppRoleAuth(role_id, secret_id),
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
    )

    reads = 0
    deadline = time.monotonic() + 16  # a rollout over twice the token's max TTL
    while time.monotonic() < deadline:
        assert client.read_secret(SECRET_PATH)["token"] == lab.secrets["platform_token"]
        reads += 1
        time.sleep(0.3)

    counted = audit(lab, role)
    print(f"{reads} reads over 16 s: {counted}")
    assert counted["logins"] == client.logins >= 3  # the max TTL (7 s) forces new logins
    assert counted["renewals"] == client.renewals >= 2  # renewed while that extended it
    assert counted["refused"] == 0  # no read ever went out with an expired token


def test_a_rollout_longer_than_its_vault_token_reads_its_secret_once_and_completes(fresh_lab):
    """A runbook reads each secret once, at the start of its run, and keeps it for the run:
    its Vault token (2 s) expiring mid-rollout (two batches, well over 2 s) changes nothing,
    and no request ever goes to Vault with the expired token."""
    role = f"rollout-{uuid.uuid4().hex[:6]}"
    root = root_client(fresh_lab)
    root.auth.approle.create_or_update_approle(
        role, token_policies=[POLICY_NAME], token_ttl="2s", token_max_ttl="2s"
    )
    vault = VaultConnection.load("lab")
    vault.role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    vault.secret_id = SecretStr(root.auth.approle.generate_secret_id(role)["data"]["secret_id"])
    lab_platform_copy(vault).save("lab-short-token", overwrite=True)
    fresh_lab.overload(8.0, "lab-web-01", "lab-web-03")
    started = time.monotonic()

    state = restart_overloaded_hosts(
        RestartPolicy(
            platform="lab-short-token",
            prometheus="lab",
            batch_size=1,
            poll_seconds=0.5,
            verify_window_seconds=30,
        ),
        return_state=True,
    )

    assert state.is_completed(), state.message
    assert time.monotonic() - started > 4  # the token expired mid-rollout
    assert sorted(fresh_lab.admin.restarts()) == ["lab-web-01", "lab-web-03"]
    assert audit(fresh_lab, role) == {
        "logins": 1,
        "renewals": 0,
        "renewals refused": 0,
        "refused": 0,
    }
