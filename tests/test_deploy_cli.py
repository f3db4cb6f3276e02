"""`opsflow deploy --work-pool`: every runbook registered for a pool's workers, with the alert
trigger and the crash automation; a pool that does not exist is one line and exit 2; schedules
paused unless asked, and a redeploy keeps what an operator changed."""

from __future__ import annotations

import contextlib
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from opsflow.flows.services.crash_detection import NAME
from tests.cli_in_process import Done, opsflow_in_process


def opsflow(*args: str) -> Done:
    """The command against the suite's Prefect API, in this process (it is called in loops)."""
    return opsflow_in_process(*args, api=PREFECT_API_URL.value())


def test_deploy_registers_the_runbooks_for_the_pool_with_their_automations():
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    answer = opsflow("deploy", "--work-pool", pool, "restart-overloaded-hosts", "load-report")

    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "deployed restart-overloaded-hosts to work pool" in answer.stdout
    with get_client(sync_client=True) as client:
        restart = client.read_deployment_by_name(
            "restart-overloaded-hosts/restart-overloaded-hosts"
        )
        report = client.read_deployment_by_name("load-report/load-report")
        names = [a.name for a in client.read_automations()]
    assert restart.work_pool_name == pool and report.work_pool_name == pool
    assert restart.entrypoint == (
        "opsflow.flows.runbooks.restart_overloaded_hosts.restart_overloaded_hosts"
    )  # the installed package: a worker needs no checkout
    assert NAME in names
    assert "restart the hosts HostOverloaded fires for" in names


def test_deploy_to_a_pool_that_does_not_exist_is_one_line_and_exit_2():
    answer = opsflow("deploy", "--work-pool", "no-such-pool")
    assert answer.returncode == 2
    assert "--work-pool: no work pool 'no-such-pool'" in answer.stdout
    assert "Traceback" not in answer.stdout + answer.stderr


def _pool() -> str:
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    return pool


def _load_report() -> DeploymentResponse:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name("load-report/load-report")


def _forget_load_report() -> None:
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_deployment(_load_report().id)


def test_a_new_deployment_schedule_is_paused_unless_asked_and_the_command_says_so():
    _forget_load_report()
    pool = _pool()

    answer = opsflow("deploy", "--work-pool", pool, "load-report")

    assert answer.returncode == 0, answer.stdout + answer.stderr
    [schedule] = _load_report().schedules
    assert schedule.active is False  # nothing runs by itself after a deploy
    out = " ".join(answer.stdout.split())
    assert f"deployed load-report to work pool {pool}: schedule '0 * * * *' UTC paused" in out
    assert "deploy again with --schedules active" in out
    assert f"a worker runs them: prefect worker start --pool {pool}" in out

    armed = opsflow("deploy", "--work-pool", pool, "load-report", "--schedules", "active")

    assert armed.returncode == 0, armed.stdout + armed.stderr
    assert "schedule '0 * * * *' UTC ACTIVE" in armed.stdout
    assert [s.active for s in _load_report().schedules] == [True]


def test_a_redeploy_keeps_what_an_operator_changed_on_the_server():
    _forget_load_report()
    pool = _pool()
    assert opsflow("deploy", "--work-pool", pool, "load-report").returncode == 0
    deployment = _load_report()
    with get_client(sync_client=True) as client:  # the operator, in the UI
        client.update_deployment(
            deployment.id,
            DeploymentUpdate(parameters={"params": {"warning": 0.5, "query": "node_load5"}}),
        )
        client.update_deployment_schedule(deployment.id, deployment.schedules[0].id, active=True)

    again = opsflow("deploy", "--work-pool", pool, "load-report")

    assert again.returncode == 0, again.stdout + again.stderr
    after = _load_report()
    assert after.parameters == {"params": {"warning": 0.5, "query": "node_load5"}}
    assert [s.active for s in after.schedules] == [True]  # resumed by the operator: still on
    out = " ".join(again.stdout.split())
    assert "load-report: kept the parameters set on the server: params.query, params.warning" in out
    assert "kept each schedule active or paused as it was" in out
