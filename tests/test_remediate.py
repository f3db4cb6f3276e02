"""A runbook made without code (`remediate`): the signal, the command, the check and every safety
knob are parameters, and the engine's guarantees come with it. Against the lab: the case is not
a restart ("clean logs when disk is over 85 %"), spelled field by field as a team would in the
UI's form or prefect.yaml; a preset of a shipped runbook; the command line.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import OpsPlatform, Prometheus
from opsflow.flows.runbooks.disk_cleanup import USAGE_QUERY, DiskCleanupParams
from opsflow.flows.runbooks.remediate import RemediateParams, remediate
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.flows.services.deployments import block_reference
from tests.cli_in_process import opsflow_in_process
from tests.conftest import Lab
from tests.test_disk_cleanup import cleanups, fill

CLEAN_LOGS: dict[str, Any] = {  # no preset: every field as a team writes it
    "name": "clean-logs",
    "signal_name": "disk usage",
    "query": USAGE_QUERY,
    "freshness_query": DiskCleanupParams().freshness_query,
    "threshold": 85,
    "recovery": 80,
    "action_name": "cleanup",
    "action_done": "cleaned",
    "action_verb": "clean up",
    "command": "find var/log -type f -mtime +7 -delete",  # no glob: an allowlist forbids it
    "allowlist": [r"find var/log -type f -mtime \+\d+ -delete"],
    "platform": "lab",
    "prometheus": "lab",
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
}


def run(**params: Any) -> tuple[Any, Any]:
    state = remediate(RemediateParams(**{**CLEAN_LOGS, **params}), return_state=True)
    return state, state.result(raise_on_failure=False)


def test_a_new_runbook_first_plans_then_cleans_and_verifies_under_its_own_name(fresh_lab: Lab):
    fill(fresh_lab, "lab-web-03")

    planned_state, planned = run()  # dry_run left out: a new runbook shows its plan first
    assert planned_state.is_completed() and planned.outcome == "dry_run"
    assert planned.reason == "would clean up 1 host in 1 batch; nothing cleaned"
    assert cleanups(fresh_lab) == []

    state, report = run(dry_run=False)

    assert state.is_completed(), report.reason
    assert report.runbook == "clean-logs" and report.verified == ["lab-web-03"]
    assert "1 host cleaned and verified" in report.summary
    assert [j["command"] for j in cleanups(fresh_lab)] == [CLEAN_LOGS["command"]]
    assert fresh_lab.admin.restarts() == {}  # not a restart


def test_a_disk_full_again_is_not_cleaned_twice_within_the_cooldown(fresh_lab: Lab):
    fill(fresh_lab, "lab-db-08")
    assert run(dry_run=False)[0].is_completed()
    fill(fresh_lab, "lab-db-08")

    again, report = run(dry_run=False)

    assert again.is_failed() and report.outcome == "needs_attention"
    assert "1 host within the cooldown" in report.reason
    assert len(cleanups(fresh_lab)) == 1


def test_the_restart_preset_restarts_like_the_shipped_runbook_and_shares_its_budget(
    fresh_lab: Lab,
):
    budget = {"platform": "lab", "prometheus": "lab", "fleet_budget_hosts": 1}
    fast = {"poll_seconds": 0.5, "verify_window_seconds": 30}
    fresh_lab.overload(8.0, "lab-web-01")
    shipped = restart_overloaded_hosts(RestartPolicy(**budget, **fast), return_state=True)
    assert shipped.is_completed()
    fresh_lab.overload(8.0, "lab-web-05")

    state = remediate(
        RemediateParams(preset="restart-overloaded-hosts", dry_run=False, **budget, **fast),
        return_state=True,
    )
    report = state.result(raise_on_failure=False)

    assert report.runbook == "restart-overloaded-hosts"
    assert state.is_failed() and "fleet budget of 1 host per 30 min reached" in report.reason
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1}  # the shipped run used the budget
    assert {j["command"] for j in fresh_lab.jobs()} == {
        "systemctl restart nginx",
        "systemctl is-active nginx",
    }


def test_from_the_command_line_a_command_outside_the_allowlist_is_one_line_and_runs_nothing(
    fresh_lab: Lab,
):
    fill(fresh_lab, "lab-web-03")
    flags = ["--platform-block", "lab", "--prometheus-block", "lab", "--preset", "disk-cleanup"]

    refused = opsflow_in_process(
        "run", "remediate", *flags, "--allowlist", "systemctl restart nginx", "--no-dry-run",
        api=PREFECT_API_URL.value(),
    )  # fmt: skip
    planned = opsflow_in_process(
        "run", "remediate", *flags, "--name", "clean-logs", api=PREFECT_API_URL.value()
    )

    assert refused.returncode == 2, refused.stdout
    assert len(refused.stdout.strip().splitlines()) == 1
    assert "--command" in refused.stdout and "shell syntax" in refused.stdout
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "dry run: would clean up 1 host in 1 batch; nothing cleaned" in planned.stdout
    assert cleanups(fresh_lab) == []


def run_of_deployment(params: dict[str, Any]) -> Any:
    """A run of the deployment `clean-logs` (CLEAN_LOGS' fields, an allowlist) given only
    `params`, run here as a worker would run it: Prefect hands the run's parameters alone."""
    blocks = {  # as the UI's picker stores them
        "platform": block_reference(OpsPlatform.load("lab")),
        "prometheus": block_reference(Prometheus.load("lab")),
    }
    deployment_id = remediate.to_deployment(
        name="clean-logs", parameters={"params": {**CLEAN_LOGS, **blocks}}
    ).apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"params": params}
        )
    state = run_flow(
        remediate, flow_run=flow_run, parameters={"params": params}, return_type="state"
    )
    return state


def test_a_deployments_run_given_one_field_takes_the_rest_and_keeps_its_allowlist(fresh_lab: Lab):
    fill(fresh_lab, "lab-web-03")

    planned = run_of_deployment({"dry_run": True})  # the rest from the deployment
    loosened = run_of_deployment({"dry_run": False, "command": "rm -rf var", "allowlist": None})

    assert planned.is_completed(), planned.message
    assert planned.message.startswith("dry run: would clean up 1 host in 1 batch")
    assert loosened.is_failed()
    assert "command 'rm -rf var' matches no allowlist pattern" in loosened.message
    assert fresh_lab.jobs() == []
