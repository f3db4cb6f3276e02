"""One Vault role per kind of runbook, each reading only the secrets its runbooks use.

The runbooks that act read the platform token and the salt-api password; the report runbook
reads a read-only platform token and nothing else. A role cannot read or list a sibling's
secret, and the report role's credentials cannot change anything, even in a runbook that acts.
"""

from __future__ import annotations

import hvac
import pytest

from opsflow.flows.runbooks.load_report import LoadReportParams, load_report
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.lab.vault_seed import (
    READONLY_SECRET_PATH,
    REPORT_ROLE,
    ROLE_NAME,
    ROLE_SECRETS,
    SECRET_PATH,
    stored_approles,
)
from tests.test_vault import root_client

EVERY_SECRET = sorted({path for paths in ROLE_SECRETS.values() for path in paths})
# A secret of each role that the lab always writes, to read for real from the other role.
WRITTEN = {ROLE_NAME: SECRET_PATH, REPORT_ROLE: READONLY_SECRET_PATH}


def logged_in_as(lab, role: str) -> hvac.Client:
    """A client holding what the role's AppRole login gets."""
    credentials = stored_approles(lab.config)[role]
    client = root_client(lab)
    client.token = client.auth.approle.login(**credentials)["auth"]["client_token"]
    return client


@pytest.mark.parametrize("role", sorted(ROLE_SECRETS))
def test_each_runbook_role_reads_its_own_secrets_and_no_sibling(lab, role):
    client = logged_in_as(lab, role)
    expected = {
        f"secret/data/{path}": ["read"] if path in ROLE_SECRETS[role] else ["deny"]
        for path in [*EVERY_SECRET, "opsflow/other"]
    }

    answer = client.sys.get_capabilities(paths=list(expected))

    assert {path: answer[path] for path in expected} == expected
    assert client.auth.token.lookup_self()["data"]["policies"] == ["default", role]
    sibling = next(WRITTEN[other] for other in WRITTEN if other != role)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version(sibling, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.list_secrets("opsflow")


def test_the_load_report_runs_with_the_report_role(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")

    report = load_report(LoadReportParams(platform="lab-report", prometheus="lab"))

    assert (report.hosts, report.critical) == (10, 1)
    assert report.worst[0]["hostname"] == "lab-web-01"


def test_a_restart_given_the_report_role_changes_nothing(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")

    state = restart_overloaded_hosts(
        RestartPolicy(
            platform="lab-report",
            prometheus="lab",
            batch_size=2,
            poll_seconds=0.5,
            verify_window_seconds=30,
        ),
        return_state=True,
    )

    assert state.is_failed()
    assert "this token may only read" in state.message
    assert fresh_lab.jobs() == []
    assert fresh_lab.admin.restarts() == {}
