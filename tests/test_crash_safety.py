"""Crashes in the middle of a rollout: the runbook's process killed, the platform restarted.

A rerun never restarts a host twice within the cooldown, and its report accounts for every
overloaded host: restarted and verified, skipped as recently restarted, or held by a lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from opsflow.lab.stack import _alive, _port_free, _processes, up
from opsflow.opsapi import OpsPlatformClient, Transport
from opsflow.tasks.host_locks import LOCK_PREFIX
from opsflow.tasks.rollout_report import RolloutReport
from tests.conftest import wait_until
from tests.prefect_lab import prefect_lab

__all__ = ["prefect_lab"]  # the module's fixture

OVERLOADED = {"lab-web-01": 9.0, "lab-db-02": 8.5, "lab-web-03": 8.0}  # restart order


@pytest.fixture
def real_prefect_api(prefect_lab, fresh_lab) -> str:
    """Runs go to a real `prefect server start`: the session's topology, where the lab's
    blocks are saved (the test harness's ephemeral API has no lease repossessor: there a
    SIGKILLed run's host locks would never be freed). Every run is its own process: Prefect's
    per-process services stay bound to the first API they talk to."""
    return prefect_lab.config.prefect_api_url


def start_runbook_process(
    api: str | None, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`opsflow run restart-overloaded-hosts`, one host per batch, in its own process group
    (`api` None: with no PREFECT_API_URL, on opsflow's local server of `env`'s Prefect home)."""
    env = {**(env or os.environ)}
    if api:
        env["PREFECT_API_URL"] = api
    return subprocess.Popen(
        [sys.executable, "-m", "opsflow.flows", "run", "restart-overloaded-hosts"]
        + ["--batch-size", "1", "--poll-seconds", "0.5", "--verify-window-seconds", "30"]
        + ["--platform-block", "lab", "--prometheus-block", "lab"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


RUN_AND_PRINT_REPORT = """
from opsflow.flows.runbooks.restart_overloaded_hosts import restart_overloaded_hosts
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
state = restart_overloaded_hosts(RestartPolicy(platform="lab", prometheus="lab", batch_size=1,
                                               poll_seconds=0.5, verify_window_seconds=30),
                                 return_state=True)
print("REPORT " + state.result(raise_on_failure=False).model_dump_json())
"""


def run_again(api: str) -> RolloutReport:
    """The runbook in a fresh process against `api`; its typed report."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_PRINT_REPORT],
        env={**os.environ, "PREFECT_API_URL": api},
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("REPORT ")), None)
    assert line, done.stdout[-2000:] + done.stderr[-3000:]
    return RolloutReport.model_validate_json(line.removeprefix("REPORT "))


def held_host_locks(api: str) -> dict[str, int]:
    answer = requests.post(f"{api}/v2/concurrency_limits/filter", json={"limit": 200}, timeout=10)
    answer.raise_for_status()
    return {
        limit["name"]: limit["active_slots"]
        for limit in answer.json()
        if limit["name"].startswith(LOCK_PREFIX) and limit["active_slots"]
    }


def run_in_state(api: str, run_id: str, state_type: str) -> dict | None:
    run = requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
    return run if run["state"]["type"] == state_type else None


def accounted(report) -> dict[str, str]:
    """hostname -> what the report says happened to it."""
    seen = {h.hostname: f"{h.result}: {h.detail}" for h in report.hosts}
    seen.update({name: "cooling down" for name in report.cooling_down})
    return seen


@pytest.mark.timeout(600)  # the killed run's leases free after 60-80 s
def test_sigkill_mid_rollout_then_rerun_restarts_no_host_twice(
    fresh_lab, real_prefect_api, tmp_path
):
    for hostname, load in OVERLOADED.items():
        fresh_lab.overload(load, hostname)
    log = tmp_path / "runbook.log"
    runbook = start_runbook_process(real_prefect_api, log)
    try:
        wait_until(
            lambda: fresh_lab.admin.restarts() or runbook.poll() is not None, 120, "a restart"
        )
        assert runbook.poll() is None, log.read_text()[-3000:]
    finally:
        os.killpg(runbook.pid, signal.SIGKILL)  # no finally, no hook, no lock release
        runbook.wait(10)
    done_by_killed_run = fresh_lab.admin.restarts()
    assert done_by_killed_run == {"lab-web-01": 1}, (done_by_killed_run, log.read_text()[-3000:])
    # Its load is still high (the restart has not helped yet): the rerun must not try again.
    fresh_lab.overload(OVERLOADED["lab-web-01"], "lab-web-01")

    rerun = run_again(real_prefect_api)

    # Right away the killed run's locks still hold its hosts: skipped, not restarted twice,
    # and said (the dead run is marked Crashed once its heartbeat is missed).
    assert fresh_lab.admin.restarts() == done_by_killed_run
    assert rerun.held_elsewhere == sorted(OVERLOADED)
    assert "3 hosts over the threshold left to the run holding them" in rerun.summary
    assert accounted(rerun).keys() == OVERLOADED.keys()
    assert accounted(rerun)["lab-web-01"] == "cooling down"
    assert {accounted(rerun)[h] for h in ("lab-db-02", "lab-web-03")} == {
        "not touched: locked by another run"
    }

    # Its leases run out (nobody renews them) and the server takes the slots back.
    wait_until(
        lambda: not held_host_locks(real_prefect_api), 150, "the killed run's host locks to expire"
    )
    last = run_again(real_prefect_api)

    assert sorted(last.verified) == ["lab-db-02", "lab-web-03"]
    assert accounted(last)["lab-web-01"] == "cooling down"  # the killed run restarted it
    # ... and it is still over the threshold: the run says so instead of ending green.
    assert last.outcome == "needs_attention" and last.needs_attention == ["lab-web-01"]
    assert fresh_lab.admin.restarts() == dict.fromkeys(OVERLOADED, 1)


@pytest.mark.timeout(400)
@pytest.mark.xdist_group("servers")  # with the other `local_prefect` tests (test_terminal_approval)
def test_a_killed_ad_hoc_run_frees_its_hosts_and_is_marked_crashed(
    fresh_lab, local_prefect, tmp_path
):
    """`opsflow run` with no PREFECT_API_URL, SIGKILLed mid-rollout: opsflow's local server
    outlives it, so its host locks are repossessed and the run is Crashed, as on a
    deployment's server (the temporary server of earlier versions died with the run and left
    the locks held forever)."""
    for hostname, load in OVERLOADED.items():
        fresh_lab.overload(load, hostname)
    log = tmp_path / "runbook.log"
    runbook = start_runbook_process(None, log, env=local_prefect)
    try:
        wait_until(
            lambda: fresh_lab.admin.restarts() or runbook.poll() is not None, 120, "a restart"
        )
        assert runbook.poll() is None, log.read_text()[-3000:]
    finally:
        os.killpg(runbook.pid, signal.SIGKILL)
        runbook.wait(10)
    killed = time.monotonic()
    state = json.loads((Path(local_prefect["PREFECT_HOME"]) / "opsflow-server.json").read_text())
    api = f"http://127.0.0.1:{state['port']}/api"
    assert held_host_locks(api)  # the killed run held its hosts
    # This server's other runs may be marked Running too (another test's stand-in holder).
    [run] = requests.post(
        f"{api}/flow_runs/filter",
        json={
            "flows": {"name": {"any_": ["restart-overloaded-hosts"]}},
            "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
        },
        timeout=10,
    ).json()

    wait_until(lambda: not held_host_locks(api), 150, "the killed run's host locks to be freed")
    freed_after = time.monotonic() - killed
    crashed = wait_until(lambda: run_in_state(api, run["id"], "CRASHED"), 150, "a Crashed run")
    crashed_after = time.monotonic() - killed

    assert freed_after < 100, freed_after  # the 60 s lease, the repossessor's 15 s
    assert crashed_after < 150, crashed_after  # three 30 s heartbeats missed
    assert "no heartbeat" in crashed["state"]["message"]
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1}
    locks = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "locks"],
        env=local_prefect,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert locks.returncode == 0 and "no host lock is held" in locks.stdout, locks.stdout


def test_a_platform_restart_mid_job_ends_the_job_failed_not_lost(fresh_lab):
    platform = _processes(fresh_lab.config)["platform"]
    client = OpsPlatformClient(
        fresh_lab.config.platform_url,
        fresh_lab.secrets["platform_token"],
        transport=Transport(ca_cert=str(fresh_lab.config.ca_cert)),
    )
    host = client.list_hosts()[0]
    job_id = client.execute_job([host.id], "sleep 30", timeout=60)
    wait_until(lambda: client.get_job(job_id).status.value == "running", 10, "the job to run")

    os.killpg(platform["pid"], signal.SIGKILL)
    wait_until(lambda: not _alive(platform), 10, "the platform to die")
    wait_until(lambda: _port_free(fresh_lab.config.ports.platform), 30, "its port to be free")
    up(fresh_lab.config, save_blocks=False)

    job = client.get_job(job_id)
    assert job.status.value == "failed"
    assert "lab platform restarted while the command ran" in job.results[0].stderr
