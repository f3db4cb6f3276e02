"""TLS to the lab platform and Vault: refused without the CA, accepted with it, and turning
verification off is never silent — the warning lands in the flow run's own logs."""

from __future__ import annotations

import logging

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from opsflow.blocks import OpsPlatform, VaultConnection, VaultSecret
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi import ConnectionFailed, Transport
from tests.conftest import lab_platform_copy, wait_until


def platform_block(lab, **tls) -> OpsPlatform:
    """The lab's platform with only the TLS settings given (no CA unless given)."""
    return lab_platform_copy(**{"ca_cert": None, **tls})


def test_the_platform_is_accepted_with_its_ca_and_refused_without(lab):
    assert len(platform_block(lab, ca_cert=str(lab.config.ca_cert)).get_client().list_hosts())

    with pytest.raises(ConnectionFailed, match="TLS verification of ops platform failed"):
        platform_block(lab, retries=0).get_client().list_hosts()


def test_vault_is_accepted_with_its_ca_and_refused_without(lab):
    vault = VaultConnection.load("lab")
    assert VaultSecret(vault=vault, path="opsflow/platform").get().get_secret_value()

    vault.transport = Transport(timeout=10)  # no CA: the machine's trust store
    with pytest.raises(ConnectionFailed, match="TLS verification of Vault failed while logging in"):
        VaultSecret(vault=vault, path="opsflow/platform").get()


def test_turning_verification_off_works_but_is_logged_as_a_warning(lab, caplog):
    caplog.set_level(logging.WARNING)

    hosts = platform_block(lab, verify_tls=False).get_client().list_hosts()

    assert hosts
    [warning] = [r for r in caplog.records if "TLS verification" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "for ops platform is OFF (verify_tls=false)" in warning.getMessage()
    assert "set ca_cert instead" in warning.getMessage()


def test_the_warning_is_in_the_flow_runs_logs_in_prefect(fresh_lab):
    platform_block(fresh_lab, verify_tls=False).save("lab-insecure", overwrite=True)

    state = restart_overloaded_hosts(
        RestartPolicy(platform="lab-insecure", prometheus="lab", dry_run=True), return_state=True
    )

    assert state.is_completed(), state.message

    def warnings() -> list:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(
                    flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
                )
            )
        return [log for log in logs if "TLS verification for ops platform is OFF" in log.message]

    found = wait_until(warnings, 20, "the warning to reach the flow run's logs")  # sent in batches
    assert all(log.level == logging.WARNING for log in found)
