"""A deployment that outgrows one process: `prefect server start` on PostgreSQL with two process
workers (the lab's `--prefect postgres --workers 2`). Host locks hold across workers; a lost
worker machine frees its hosts and its run is marked Crashed; a server restart mid-rollout
leaves no lock stuck."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.lab.stack import down, up
from opsflow.tasks.fleet_budget import claim_hosts
from tests.conftest import Lab, wait_until
from tests.prefect_lab import (
    RESTART,
    alert_trigger,
    finished_runs,
    held,
    lab_server,
    prefect_lab,
    restart_runs,
    start_restart,
)

__all__ = ["prefect_lab"]  # the module's fixture

# A lost worker's leases free after 60-80 s, and its run is marked Crashed after about 90 s.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(autouse=True)
def no_alert_trigger(prefect_lab: Lab) -> Any:
    """These tests start their runs themselves: the alert trigger would add runs of its own
    (paused by the fixture; a test that brings the server or a worker back pauses it again)."""
    alert_trigger(prefect_lab, enabled=False)
    prefect_lab.reset(10)


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        todo += kids
    return found


def worker_running(lab: Lab, run_id: Any) -> tuple[str, int, list[int]] | None:
    """(worker name, its pid, its processes) of the worker whose flow-run process runs `run_id`."""
    processes = json.loads((lab.config.dir / "processes.json").read_text())
    for name, entry in processes.items():
        if not name.startswith("prefect-worker-"):
            continue
        for pid in children(entry["pid"]):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ:
                return name, entry["pid"], children(entry["pid"])
    return None


def test_host_locks_hold_across_two_workers(prefect_lab: Lab) -> None:
    hosts = ["lab-web-01", "lab-db-02", "lab-web-03", "lab-db-04"]
    prefect_lab.overload(8.0, *hosts)
    known = {r.id for r in restart_runs(prefect_lab)}
    overlapping = [hosts[0:2], hosts[1:3], hosts[2:4], [hosts[3], hosts[0]], hosts, hosts[::2]]
    runs = [start_restart(prefect_lab, pair) for pair in overlapping]

    finished = finished_runs(prefect_lab, known, len(runs), timeout=240)

    assert prefect_lab.admin.restarts() == dict.fromkeys(hosts, 1)
    assert all(r.state.is_completed() for r in finished), [r.state.message for r in finished]
    logs = {
        name: (prefect_lab.config.dir / "logs" / f"{name}.log").read_text()
        for name in ("prefect-worker-1", "prefect-worker-2")
    }
    ran_by = {name: [str(r.id) for r in runs if str(r.id) in text] for name, text in logs.items()}
    assert all(ran_by.values()), f"one worker ran every run: {ran_by}"


def test_a_lost_worker_machine_frees_its_hosts_and_its_run_is_marked_crashed(
    prefect_lab: Lab,
) -> None:
    hosts = ["lab-web-05", "lab-db-06", "lab-web-07", "lab-db-08"]
    prefect_lab.overload(8.0, *hosts)
    # Batches go by load, then name: lab-db-06 first, then lab-db-08, whose restart hangs, so
    # the rollout is mid-way when the machine dies.
    prefect_lab.admin.hang_restart("lab-db-08")
    run = start_restart(prefect_lab, hosts, job_timeout_seconds=600)
    wait_until(lambda: prefect_lab.admin.restarts().get("lab-db-06"), 120, "batch 1 to restart")
    wait_until(lambda: worker_running(prefect_lab, run.id), 30, "the run's worker")
    name, worker_pid, processes = worker_running(prefect_lab, run.id)  # type: ignore[misc]
    assert held(prefect_lab, hosts) == hosts

    killed = time.monotonic()
    for pid in [worker_pid, *processes]:  # the machine is gone: the worker and its run
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    wait_until(lambda: not held(prefect_lab, hosts), 150, "the dead run's locks to free")
    freed_after = time.monotonic() - killed
    crashed = wait_until(
        lambda: (r := restart_runs_by_id(prefect_lab, run.id)).state.is_crashed() and r,
        150,
        "the heartbeat automation to mark the dead run Crashed",
    )
    crashed_after = time.monotonic() - killed
    print(
        f"lost worker: locks free after {freed_after:.0f}s, run Crashed after {crashed_after:.0f}s"
    )
    assert "no heartbeat" in crashed.state.message

    prefect_lab.admin.hang_restart("lab-db-08", False)
    up(prefect_lab.config, save_blocks=False)  # the worker comes back
    alert_trigger(prefect_lab, enabled=False)
    known = {r.id for r in restart_runs(prefect_lab)}
    start_restart(prefect_lab, hosts)
    [rerun] = finished_runs(prefect_lab, known, 1)

    assert rerun.state.is_completed(), rerun.state.message
    restarts = prefect_lab.admin.restarts()
    assert all(restarts.get(h, 0) <= 1 for h in hosts), restarts  # none restarted twice
    assert restarts.get("lab-web-07") == 1 and restarts.get("lab-db-08") == 1


def restart_runs_by_id(lab: Lab, run_id: Any) -> FlowRun:
    with lab_server(lab) as client:
        return client.read_flow_run(run_id)


def test_a_server_restart_mid_rollout_leaves_no_lock_stuck(prefect_lab: Lab) -> None:
    hosts = ["lab-web-09", "lab-db-10", "lab-web-01", "lab-db-02"]
    prefect_lab.overload(8.0, *hosts)
    known = {r.id for r in restart_runs(prefect_lab)}
    run = start_restart(prefect_lab, hosts)
    wait_until(lambda: prefect_lab.admin.restarts().get("lab-db-02"), 120, "batch 1 to restart")

    down(prefect_lab.config, only=("prefect-server",))
    time.sleep(3)
    up(prefect_lab.config, save_blocks=False)  # the same database, leases kept in files
    alert_trigger(prefect_lab, enabled=False)  # the restarted lab server deployed anew

    [ended] = finished_runs(prefect_lab, known, 1, timeout=240)
    assert ended.id == run.id
    # It either completed or failed cleanly; either way nothing stays locked.
    wait_until(lambda: not held(prefect_lab, hosts), 150, "every lock to be free")
    restarts = prefect_lab.admin.restarts()
    assert all(restarts.get(h, 0) <= 1 for h in hosts), restarts
    print(f"server restart mid-rollout: run {ended.state.type.value}: {ended.state.message}")
    # The fleet budget is in the server's database: its four hosts still count after the
    # restart, so of the default 5 per 30 min one is left.
    with lab_server(prefect_lab):
        claim = claim_hosts(RestartPolicy().fleet_budget, ["no-such-1", "no-such-2"])
    assert (claim.granted, claim.refused) == (["no-such-1"], ["no-such-2"])


def run_with(lab: Lab, policy: dict[str, Any]) -> FlowRun:
    """A run of the restart deployment given only `policy` (what `prefect deployment run
    --params`, a custom run or a trigger sends), run by a worker to its end."""
    known = {r.id for r in restart_runs(lab)}
    with lab_server(lab):
        run_deployment(f"{RESTART}/{RESTART}", parameters={"policy": policy}, timeout=0)
    [run] = finished_runs(lab, known, 1)
    return run


def test_a_run_given_some_fields_keeps_every_other_field_of_its_deployment(prefect_lab: Lab):
    """Prefect replaces a parameter as a whole; the runbook takes what the run was not given
    from its deployment, so its blocks and its dry_run are never lost to an override."""
    prefect_lab.overload(8.0, "lab-web-01")
    selector = {"hostnames": ["lab-web-01"]}

    # The deployment names the lab's blocks (no block is saved as "default" here).
    run = run_with(prefect_lab, {"dry_run": True, "selector": selector})

    assert run.state.is_completed(), run.state.message
    assert run.state.message.startswith("dry run: would restart 1 host"), run.state.message

    # A deployment whose default is a dry run, run with only its selector overridden.
    with lab_server(prefect_lab) as client:
        deployment = client.read_deployment_by_name(f"{RESTART}/{RESTART}")
        original = deployment.parameters
        client.update_deployment(
            deployment.id,
            DeploymentUpdate(parameters={"policy": {**original["policy"], "dry_run": True}}),
        )
    try:
        run = run_with(prefect_lab, {"selector": selector})
    finally:
        with lab_server(prefect_lab) as client:
            client.update_deployment(deployment.id, DeploymentUpdate(parameters=original))

    assert run.state.message.startswith("dry run: would restart 1 host"), run.state.message
    assert prefect_lab.admin.restarts() == {}
    prefect_lab.admin.overload("lab-web-01", None)
