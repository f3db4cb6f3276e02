"""No credential in logs, artifacts, exceptions, the audit log or the Prefect database."""

from __future__ import annotations

import logging
from pathlib import Path

import prefect.settings
import pytest
from pydantic import SecretStr

from opsflow.blocks import OpsPlatform, VaultConnection
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi import Transport
from tests.conftest import lab_platform_copy
from tests.test_vault import root_client

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


def prefect_database_files() -> list[Path]:
    url = prefect.settings.get_current_settings().server.database.connection_url.get_secret_value()
    assert url.startswith("sqlite"), url
    database = Path(url.split(":///", 1)[1])
    assert database.exists(), url
    return [p for p in database.parent.iterdir() if p.name.startswith(database.name)]


def token_platform_block(lab, vault_token: str) -> str:
    """An Ops Platform block whose Vault connection uses a plain Vault token."""
    vault = VaultConnection(
        url=lab.config.vault_url,
        auth_method="token",
        token=SecretStr(vault_token),
        transport=Transport(ca_cert=str(lab.config.vault_ca_cert)),
    )
    lab_platform_copy(vault).save("lab-token", overwrite=True)
    return "lab-token"


def test_no_secret_appears_anywhere_after_runs(fresh_lab, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    vault_token = root_client(fresh_lab).auth.token.create(policies=["opsflow-runbook"], ttl="1h")[
        "auth"
    ]["client_token"]
    wrong_secret_id = "wrong-secret-id-9876543210"
    broken = VaultConnection.load("lab")
    broken.secret_id = SecretStr(wrong_secret_id)
    lab_platform_copy(broken).save("lab-broken", overwrite=True)
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")

    ok = restart_overloaded_hosts(RestartPolicy(**FAST), return_state=True)  # AppRole
    dry = restart_overloaded_hosts(  # token auth
        RestartPolicy(
            **{**FAST, "platform": token_platform_block(fresh_lab, vault_token)}, dry_run=True
        ),
        return_state=True,
    )
    bad = restart_overloaded_hosts(
        RestartPolicy(**{**FAST, "platform": "lab-broken"}), return_state=True
    )

    assert ok.is_completed() and dry.is_completed() and bad.is_failed()
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1, "lab-db-02": 1}
    secrets = {
        "platform token": fresh_lab.secrets["platform_token"],
        "AppRole secret id": fresh_lab.approle["secret_id"],
        "Vault token": vault_token,
        "Vault root token": fresh_lab.secrets["vault_root_token"],
        "wrong secret id": wrong_secret_id,
    }
    places = {
        "captured logs": caplog.text,
        "captured output": "".join(capfd.readouterr()),
        "audit log": fresh_lab.config.audit_log.read_text(),
        "failure message": str(bad.message),
    }
    for path in prefect_database_files():
        places[f"Prefect database {path.name}"] = path.read_bytes().decode("latin-1")
    assert "Authorization" in places["audit log"]  # the audit log did record the requests
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text
    ]
    assert leaks == []


@pytest.mark.parametrize("header", ["Token", "Bearer"])
def test_audit_log_redacts_the_authorization_header(fresh_lab, header):
    platform = OpsPlatform.load("lab")
    platform.auth_scheme = header

    platform.get_client().list_hosts()

    last = fresh_lab.config.audit_log.read_text().splitlines()[-1]
    assert '"Authorization": "***"' in last
    assert fresh_lab.secrets["platform_token"] not in last
