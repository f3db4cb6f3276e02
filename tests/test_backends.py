"""What is true of every execution backend, tested on each: the seed-style platform,
SaltStack, and a backend opsflow did not write (examples/inhouse_backend: another API's paths,
fields, states and paging, a block type from a package of its own). The runbook code is the
same; only the block given differs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from opsflow.flows.runbooks.load_report import LoadReportParams, load_report
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.flows.runbooks.run_command import RunCommandParams, run_command
from opsflow.lab.salt import clear_job_cache
from tests import inhouse
from tests.conftest import Lab, flapping_events, wait_until
from tests.inhouse import inhouse_api

__all__ = ["inhouse_api"]  # the module's fixture


@pytest.fixture(params=["lab", "salt-api/lab", inhouse.BLOCK], ids=["platform", "salt", "own"])
def backend(request: pytest.FixtureRequest, lab: Lab) -> tuple[str, Lab]:
    """(the platform block to give a runbook, the lab with 10 fresh calm hosts)."""
    if request.param.startswith("salt-api/"):
        lab = request.getfixturevalue("salt_lab")
        clear_job_cache(lab.config.dir)
    if request.param == inhouse.BLOCK:
        request.getfixturevalue("inhouse_api")
    lab.reset(10)
    return request.param, lab


FAST = {"batch_size": 2, "poll_seconds": 0.5, "verify_window_seconds": 30}


def test_the_restart_runbook_restarts_and_verifies_the_same_on_every_backend(backend):
    platform, lab = backend
    lab.overload(8.0, "lab-web-03", "lab-db-06", "lab-web-09")

    state = restart_overloaded_hosts(
        RestartPolicy(platform=platform, prometheus="lab", **FAST), return_state=True
    )

    report = state.result()
    assert report.outcome == "completed"
    assert sorted(report.verified) == ["lab-db-06", "lab-web-03", "lab-web-09"]
    assert [h.batch for h in sorted(report.hosts, key=lambda h: h.hostname)] == [1, 1, 2]
    assert all(h.value_after is not None and h.value_after < 2 for h in report.hosts)
    assert lab.admin.restarts() == {"lab-db-06": 1, "lab-web-03": 1, "lab-web-09": 1}


def test_the_cooldown_comes_from_the_backends_own_job_history(backend):
    platform, lab = backend
    lab.overload(8.0, "lab-web-01")
    policy = RestartPolicy(platform=platform, prometheus="lab", **FAST)
    first = restart_overloaded_hosts(policy, return_state=True)
    lab.overload(8.0, "lab-web-01")  # high again right after its restart

    again = restart_overloaded_hosts(policy, return_state=True)

    assert first.result().verified == ["lab-web-01"]
    report = again.result(raise_on_failure=False)
    assert "lab-web-01" in report.cooling_down
    # Still over the threshold and left alone: not a green run.
    assert again.is_failed() and report.outcome == "needs_attention"
    assert report.needs_attention == ["lab-web-01"]
    assert lab.admin.restarts() == {"lab-web-01": 1}


def test_a_host_that_keeps_coming_back_is_escalated_not_restarted_again_on_every_backend(
    backend,
):
    platform, lab = backend
    policy = RestartPolicy(
        platform=platform, prometheus="lab", cooldown_minutes=0, max_repeats=2, **FAST
    )
    for _ in range(2):
        lab.overload(8.0, "lab-web-01")
        assert restart_overloaded_hosts(policy, return_state=True).is_completed()
    lab.overload(8.0, "lab-web-01", "lab-db-02")  # back again, and another host with it
    started = datetime.now(timezone.utc)

    state = restart_overloaded_hosts(policy, return_state=True)

    report = state.result(raise_on_failure=False)
    assert state.is_failed() and report.outcome == "needs_attention"
    assert report.flapping == {"lab-web-01": 2}
    assert "flapping: lab-web-01 restarted 2 times in 6 h; escalated, not restarted" in (
        state.message
    )
    assert report.verified == ["lab-db-02"]  # the other host of the run is still handled
    assert lab.admin.restarts() == {"lab-web-01": 2, "lab-db-02": 1}

    [event] = wait_until(
        lambda: flapping_events("lab-web-01", report.plan_digest, since=started),
        30,
        "the flapping event to reach the API",
    )
    assert event.payload["times"] == 2 and event.payload["action"] == "restart"


def test_run_command_gives_each_hosts_output_on_every_backend(backend):
    platform, lab = backend

    state = run_command(
        RunCommandParams(
            command="echo $LAB_HOSTNAME; exit 3", selector={"tags": ["db"]}, platform=platform
        ),
        return_state=True,
    )

    result = state.result(raise_on_failure=False)
    assert sorted(r.hostname for r in result.hosts) == [f"lab-db-{n:02d}" for n in (2, 4, 6, 8, 10)]
    assert all(r.stdout.strip() == r.hostname and r.exit_code == 3 for r in result.hosts)
    assert state.is_failed()  # every host exited 3


def test_the_load_report_covers_every_backends_inventory(backend):
    platform, lab = backend
    lab.overload(8.0, "lab-db-02")

    report = load_report(LoadReportParams(platform=platform, prometheus="lab"))

    assert (report.hosts, report.critical) == (10, 1)
    assert report.worst[0]["hostname"] == "lab-db-02"
