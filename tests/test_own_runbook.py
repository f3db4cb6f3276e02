"""A runbook a user writes with the public API only (examples/consumer_lag.py, 40 lines) has
every guarantee of the shipped ones without writing any: the dry run, the cap, the verified
report, the cooldown, the escalation of a flapping host, the locks, the fleet budget and the
approval, from the engine.

The lab has no queue: its hosts' load stands in for the consumers' lag (any `systemctl
restart` on a lab host brings its load down, as a restarted consumer would catch up)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from examples.consumer_lag import ConsumerLagPolicy, restart_lagging_consumers
from opsflow.tasks.host_locks import host_locks
from tests.conftest import Lab, flapping_events, wait_until

LAB = {"platform": "lab", "prometheus": "lab", "lag_query": "node_load1"}
FAST = {"threshold": 4, "recovered_below": 2, "poll_seconds": 0.5, "verify_window_seconds": 30}


def run(**policy: Any) -> tuple[Any, Any]:
    state = restart_lagging_consumers(ConsumerLagPolicy(**LAB, **FAST, **policy), return_state=True)
    return state, state.result(raise_on_failure=False)


def test_a_dry_run_plans_and_touches_nothing(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")

    state, report = run(dry_run=True)

    assert report.outcome == "dry_run"
    assert sorted(report.hostnames("planned")) == ["lab-db-02", "lab-web-01"]
    assert fresh_lab.jobs() == [] and fresh_lab.admin.restarts() == {}


def test_more_lagging_hosts_than_its_cap_abort_before_any_restart(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02", "lab-web-03")

    state, report = run(max_hosts=2)

    assert state.is_failed() and report.outcome == "aborted"
    assert "blast-radius cap of 2" in report.reason
    assert fresh_lab.jobs() == []


def test_it_restarts_verifies_reports_and_keeps_the_cooldown(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-web-05")

    state, report = run()

    assert state.is_completed() and report.verified == ["lab-web-05"]
    assert [j["command"] for j in fresh_lab.jobs()] == ["systemctl restart queue-consumer"]
    assert "1 host restarted and verified" in report.summary

    fresh_lab.overload(8.0, "lab-web-05")  # lagging again right after its restart
    again, report = run()

    assert again.is_failed() and report.outcome == "needs_attention"
    assert "lab-web-05" in report.cooling_down
    assert fresh_lab.admin.restarts() == {"lab-web-05": 1}


def test_a_consumer_that_keeps_lagging_is_escalated_not_restarted_forever(fresh_lab: Lab) -> None:
    for _ in range(2):
        fresh_lab.overload(8.0, "lab-db-06")
        assert run(cooldown_minutes=0, max_repeats=2)[0].is_completed()
    fresh_lab.overload(8.0, "lab-db-06")
    started = datetime.now(timezone.utc)

    state, report = run(cooldown_minutes=0, max_repeats=2)

    assert state.is_failed() and report.flapping == {"lab-db-06": 2}
    assert fresh_lab.admin.restarts() == {"lab-db-06": 2}
    wait_until(
        lambda: flapping_events("lab-db-06", report.plan_digest, since=started),
        30,
        "the escalation",
    )


def test_a_consumer_another_run_holds_is_left_to_it(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-web-07")
    held = str(fresh_lab.admin.host("lab-web-07")["id"])

    with host_locks([held]) as (ours, _):  # another run, mid-rollout on that host
        assert ours == [held]
        state, report = run()

    assert "lab-web-07" in report.held_elsewhere
    assert fresh_lab.admin.restarts() == {}


def test_its_fleet_budget_lets_only_so_many_restarts_through(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-web-09", "lab-db-10")

    state, report = run(fleet_budget_hosts=1)

    assert len(report.verified) == 1 and len(report.not_touched) == 1, report.summary
    assert "fleet budget of 1" in state.message
    assert len(fresh_lab.admin.restarts()) == 1


def test_an_unanswered_approval_restarts_nothing(fresh_lab: Lab) -> None:
    fresh_lab.overload(8.0, "lab-db-04")

    state, report = run(approval=True, approval_timeout_seconds=1)

    assert state.is_failed() and report.outcome == "aborted"
    assert report.reason.startswith("not approved")
    assert fresh_lab.jobs() == [] and fresh_lab.admin.restarts() == {}
