"""Approval, silences, per-host locks and the cooldown of the restart runbook."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL

from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.lab.stack import LabAdmin
from opsflow.tasks.host_locks import host_locks
from tests.conftest import wait_until
from tests.test_restart_runbook import artifacts_of

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


def run_in_thread(policy: RestartPolicy) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        box["state"] = restart_overloaded_hosts(policy, return_state=True)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def paused_run_id():
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            )
        )
    return runs[0].id if runs else None


def planned_digest(run_id) -> str:
    """The digest of the plan a paused run asks about (its plan artifact says it)."""

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )

    [plan] = [a for a in asyncio.run(read()) if a.key == "restart-plan"]
    return plan.description.split()[-1]


def test_approved_rollout_runs_and_records_the_plan_it_approved(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    thread, box = run_in_thread(RestartPolicy(approval=True, approval_timeout_seconds=120, **FAST))

    run_id = wait_until(paused_run_id, 60, "the run to pause for approval")
    assert fresh_lab.jobs() == []  # nothing happens before the answer
    digest = planned_digest(run_id)
    asked = datetime.now(timezone.utc)
    resume_flow_run(
        run_id,
        run_input={"approve": True, "plan_digest": digest, "note": "go", "approver": "kim"},
    )
    thread.join(120)

    report = box["state"].result()
    assert report.outcome == "completed"
    assert report.approved_plan == digest == report.plan_digest
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1}
    # The decision is an audit record, in the typed report and in its artifact.
    record = report.approval
    assert (record.decision, record.plan_digest, record.note, record.approver) == (
        "approved",
        digest,
        "go",
        "kim",
    )
    assert asked <= record.answered_at <= datetime.now(timezone.utc)
    assert f"**Approval**: approved plan {digest} by kim at " in summary_artifact(run_id)
    paused_line = next(line for line in run_logs(run_id) if "waits up to 120s" in line)
    assert "press Resume on this run's page in the Prefect UI" in paused_line


def test_an_approval_of_another_plan_is_a_reject(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    thread, box = run_in_thread(RestartPolicy(approval=True, approval_timeout_seconds=120, **FAST))

    run_id = wait_until(paused_run_id, 60, "the run to pause for approval")
    resume_flow_run(run_id, run_input={"approve": True, "plan_digest": "0123456789abcdef"})
    thread.join(120)

    report = box["state"].result(raise_on_failure=False)
    assert report.outcome == "aborted"
    assert "the answer approved plan 0123456789abcdef, not" in report.reason
    assert fresh_lab.jobs() == []
    assert report.approval.decision == "rejected"
    assert report.approval.approver == "an unnamed user of the Prefect UI"


def summary_artifact(run_id) -> str:
    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )

    [summary] = [a for a in asyncio.run(read()) if a.key == "restart-summary"]
    return summary.data


def run_logs(run_id) -> list[str]:
    async def read():
        async with get_client() as client:
            return await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
            )

    return [log.message for log in asyncio.run(read())]


def test_after_a_late_approval_the_load_is_read_again_before_each_batch(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")
    thread, box = run_in_thread(
        RestartPolicy(**{**FAST, "batch_size": 1}, approval=True, approval_timeout_seconds=120)
    )
    run_id = wait_until(paused_run_id, 60, "the run to pause for approval")
    digest = planned_digest(run_id)

    # While nobody answers: one planned host recovers, another host crosses the threshold.
    fresh_lab.admin.overload("lab-db-02", 0.3)
    fresh_lab.overload(9.0, "lab-web-05")
    wait_until(lambda: fresh_lab.prometheus_loads()["lab-db-02"] < 1, 20, "lab-db-02 to calm")
    resume_flow_run(run_id, run_input={"approve": True, "plan_digest": digest})
    thread.join(120)

    report = box["state"].result()
    by_host = {h.hostname: h for h in report.hosts}
    assert by_host["lab-web-01"].result == "verified"
    assert by_host["lab-db-02"].result == "recovered before restart"
    assert "not over 4 any more" in by_host["lab-db-02"].detail
    assert "lab-web-05" not in by_host  # never added to an approved plan
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1}
    assert "1 recovered before restart" in report.summary


def test_rejected_rollout_restarts_nothing_and_says_why(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    thread, box = run_in_thread(RestartPolicy(approval=True, approval_timeout_seconds=120, **FAST))

    run_id = wait_until(paused_run_id, 60, "the pause")
    resume_flow_run(
        run_id,
        run_input={
            "approve": False,
            "plan_digest": planned_digest(run_id),
            "note": "change freeze",
        },
    )
    thread.join(120)

    report = box["state"].result(raise_on_failure=False)
    assert report.outcome == "aborted"
    assert report.reason == "not approved: change freeze"
    assert fresh_lab.jobs() == []


def test_no_answer_in_time_is_a_reject(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")

    state = restart_overloaded_hosts(
        RestartPolicy(approval=True, approval_timeout_seconds=3, **FAST), return_state=True
    )

    # Our own deadline answers before Prefect's: the run ends with our reason, not "never
    # resumed", in its state message, its typed result and its report artifact.
    assert state.is_failed()
    assert "aborted: not approved: no answer within 3s" in state.message
    assert state.result(raise_on_failure=False).reason == "not approved: no answer within 3s"
    summary = artifacts_of(state.state_details.flow_run_id)["restart-summary"]
    assert "aborted: not approved: no answer within 3s" in summary
    assert fresh_lab.jobs() == []


def silences(lab) -> list[dict]:
    import requests

    return requests.get(f"{lab.config.alertmanager_url}/api/v2/silences", timeout=5).json()


def test_silence_covers_exactly_the_planned_hosts_and_is_expired_after(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")
    thread, box = run_in_thread(RestartPolicy(alertmanager="lab", **FAST))

    active = wait_until(
        lambda: [s for s in silences(fresh_lab) if s["status"]["state"] == "active"],
        30,
        "an active silence",
    )
    thread.join(120)

    assert box["state"].is_completed()
    [silence] = active
    ips = {h["hostname"]: h["ip"] for h in fresh_lab.admin.hosts()}
    assert silence["matchers"] == [
        {
            "name": "instance",
            "isRegex": True,
            "isEqual": True,
            "value": "|".join(
                sorted(f"{ips[n]}:9100".replace(".", r"\.") for n in ("lab-web-01", "lab-db-02"))
            ),
        }
    ]
    after = next(s for s in silences(fresh_lab) if s["id"] == silence["id"])
    assert after["status"]["state"] == "expired"


def test_silence_is_expired_even_when_the_rollout_fails(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    fresh_lab.admin.fail_restart("lab-web-01")
    before = {s["id"] for s in silences(fresh_lab)}

    state = restart_overloaded_hosts(RestartPolicy(alertmanager="lab", **FAST), return_state=True)

    assert state.is_failed()
    [new] = [s for s in silences(fresh_lab) if s["id"] not in before]
    assert new["status"]["state"] == "expired"


def test_two_concurrent_runs_restart_each_host_once(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02", "lab-web-03")

    runs = [run_in_thread(RestartPolicy(**{**FAST, "batch_size": 1})) for _ in range(2)]
    for thread, _ in runs:
        thread.join(180)

    assert fresh_lab.admin.restarts() == {"lab-web-01": 1, "lab-db-02": 1, "lab-web-03": 1}
    reports = [box["state"].result(raise_on_failure=False) for _, box in runs]
    assert sorted(name for r in reports for name in r.verified) == [
        "lab-db-02",
        "lab-web-01",
        "lab-web-03",
    ]


def test_a_later_run_in_another_process_skips_hosts_within_the_cooldown(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    first = restart_overloaded_hosts(RestartPolicy(**FAST), return_state=True)
    assert first.is_completed()
    fresh_lab.overload(8.0, "lab-web-01")  # load is back up right after the restart

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsflow.flows",
            "run",
            "restart-overloaded-hosts",
            "--verify-window-seconds",
            "30",
            "--platform-block",
            "lab",
            "--prometheus-block",
            "lab",
        ],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert again.returncode == 1, again.stdout + again.stderr  # left alone: not a success
    assert "skipped, restarted within the cooldown: lab-web-01" in again.stdout
    said = " ".join(again.stdout.split())  # as one line, however the terminal wrapped it
    assert "needs attention" in said and "left alone: lab-web-01" in said
    assert LabAdmin(fresh_lab.config).restarts() == {"lab-web-01": 1}
    no_cooldown = restart_overloaded_hosts(
        RestartPolicy(cooldown_minutes=0, **FAST), return_state=True
    )
    assert no_cooldown.result().verified == ["lab-web-01"]
    assert fresh_lab.admin.restarts() == {"lab-web-01": 2}


def test_a_held_host_lock_is_reported_calmly_not_as_prefects_error(caplog):
    @flow
    def lock_twice() -> list[tuple[list[str], list[str]]]:
        with host_locks(["lock-test-1", "lock-test-2"]) as first:
            with host_locks(["lock-test-2", "lock-test-3"], wait_seconds=1) as second:
                return [first, second]

    first, second = lock_twice()

    assert first == (["lock-test-1", "lock-test-2"], [])
    assert second == (["lock-test-3"], ["lock-test-2"])

    assert "1 host is locked by another run: lock-test-2" in caplog.text
    assert not [r for r in caplog.records if r.name == "prefect._internal.concurrency"]
