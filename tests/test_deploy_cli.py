"""`opsflow deploy --work-pool`: every runbook registered for a pool's workers, with the alert
trigger and the crash automation; a pool that does not exist is one line and exit 2."""

from __future__ import annotations

import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
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
